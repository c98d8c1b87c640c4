// Stops containers for a capture or a restore and hands back the Release that starts them again
// (in reverse order). Every stop is journaled first, every start cleared after, so a killed run
// leaves nothing stopped for good.
import { dependentsFirst, type ProjectInfo } from "../compose/discover.ts";
import { startContainer, stopContainer, type ContainerInfo } from "../docker/containers.ts";
import { describeEngineError, retryWhileEngineUnavailable } from "../docker/engine.ts";
import { log } from "../log.ts";
import type { StopJournal } from "./journal.ts";

export interface Stoppage {
  stopped: ContainerInfo[];
  release: () => Promise<void>;
  /** Seconds from the first stop to the end of the release (0 before it ran). */
  downtimeSeconds: () => number;
}

/** Running containers of `services` and of every service depending on them, dependents first. */
export function containersToStop(project: ProjectInfo, services: string[]): ContainerInfo[] {
  return dependentsFirst(project, services).flatMap(
    (name) => project.services.find((service) => service.name === name)?.containers.filter((container) => container.running) ?? [],
  );
}

export async function stopContainers(containers: ContainerInfo[], journal: StopJournal, timeoutSeconds: number): Promise<Stoppage> {
  const started = performance.now();
  let finished: number | undefined;
  const stopped: ContainerInfo[] = [];
  const release = async () => {
    const failures: string[] = [];
    for (const container of [...stopped].reverse()) {
      try {
        // a daemon restarting under us is waited for: leaving the service down is the worse outcome
        await retryWhileEngineUnavailable(`start ${container.name}`, () => startContainer(container.id));
        await journal.remove(container.id);
      } catch (error) {
        failures.push(`${container.name}: ${describeEngineError(error)}`);
      }
    }
    finished = performance.now();
    if (failures.length) throw new Error(`could not restart ${failures.join("; ")}`);
  };
  try {
    for (const container of containers) {
      await journal.add({ id: container.id, name: container.name });
      stopped.push(container);
      log.info(`stopping ${container.name}`);
      await stopContainer(container.id, timeoutSeconds);
    }
  } catch (error) {
    await release().catch(() => undefined);
    throw error;
  }
  return { stopped, release, downtimeSeconds: () => (finished === undefined ? 0 : (finished - started) / 1000) };
}

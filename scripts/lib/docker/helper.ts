// Helper containers: a small image (busybox by default) kept alive with `sleep` while composure
// runs commands in it by exec. Helpers log nothing (log driver "none": no second copy of a
// backup on the host's disk), have no network, and carry a label so leftovers of a killed run
// are removed by the next one.
import { type Writable } from "node:stream";
import { execCapture, execStreaming, type ExecOptions } from "./containers.ts";
import { getEngine } from "./engine.ts";

export const helperLabel = "composure.helper";

export interface Helper {
  readonly id: string;
  run(argv: string[], options?: ExecOptions): Promise<{ exitCode: number; stdout: string; stderr: string }>;
  stream(argv: string[], stdout: Writable, options?: ExecOptions): Promise<{ exitCode: number; stderr: string }>;
  remove(): Promise<void>;
}

export interface HelperSpec {
  image: string;
  /** Docker bind specs: "volume:/path:ro", "/host/dir:/pipe". */
  binds: string[];
  project: string;
  /** Network namespace to join, e.g. "container:<id>"; default none. */
  networkMode?: string;
}

/** Helpers of this process that are still running, removed on SIGINT/SIGTERM. */
const liveHelpers = new Set<string>();

export async function removeLiveHelpers(): Promise<void> {
  await Promise.all([...liveHelpers].map((id) => getEngine().getContainer(id).remove({ force: true }).catch(() => undefined)));
  liveHelpers.clear();
}

export async function startHelper(spec: HelperSpec): Promise<Helper> {
  const container = await getEngine().createContainer({
    Image: spec.image,
    Entrypoint: ["sleep"],
    Cmd: ["2147483647"],
    Labels: { [helperLabel]: spec.project },
    HostConfig: { Binds: spec.binds, LogConfig: { Type: "none", Config: {} }, NetworkMode: spec.networkMode ?? "none" },
  });
  try {
    await container.start();
  } catch (error) {
    await container.remove({ force: true }).catch(() => undefined);
    throw error;
  }
  liveHelpers.add(container.id);
  return {
    id: container.id,
    run: (argv, options) => execCapture(container.id, argv, options),
    stream: (argv, stdout, options) => execStreaming(container.id, argv, stdout, options),
    remove: async () => {
      liveHelpers.delete(container.id);
      await container.remove({ force: true, v: false }).catch(() => undefined);
    },
  };
}

/** Removes helpers a killed run of this project left behind. */
export async function removeLeftoverHelpers(project: string): Promise<number> {
  const engine = getEngine();
  const leftovers = await engine.listContainers({ all: true, filters: { label: [`${helperLabel}=${project}`] } });
  await Promise.all(leftovers.map((summary) => engine.getContainer(summary.Id).remove({ force: true }).catch(() => undefined)));
  return leftovers.length;
}

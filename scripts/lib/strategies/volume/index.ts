// The `volume` strategy: tar the service's volumes through a read-only helper. Stop mode (the
// default) stops the service, everything depending on it and every other writer of its volumes
// for exactly the length of the capture; hot mode (`stop: false`) copies files as they are.
import { z } from "zod";
import type { Artifact } from "../../catalog/manifest.ts";
import { selectMounts, type SelectedMount } from "../../compose/mounts.ts";
import { runningUsersOfVolume, type ContainerInfo } from "../../docker/containers.ts";
import { beginHelper, helperLabel, openHelper, withHelper, type HelperSession } from "../../docker/helper.ts";
import { createVolume, inspectVolume } from "../../docker/volumes.ts";
import { log } from "../../log.ts";
import { failpoint } from "../../lifecycle/failpoint.ts";
import { containersToStop, stopContainers, type Stoppage } from "../../lifecycle/stopper.ts";
import type { ProjectInfo, ServiceInfo } from "../../compose/discover.ts";
import type { BackupContext, CaptureSession, Release, RestoreContext, Strategy } from "../types.ts";
import { createGate, type SourceGate } from "../../store/gate.ts";
import { hotSession } from "../shared/session.ts";
import type { VolumeFacts } from "../shared/service-data.ts";
import { compareTreeFacts, isTreeFacts, treeFacts, type TreeFacts } from "../shared/tree-facts.ts";
import { captureMounts, mountBinds, mountDir } from "../shared/mount-capture.ts";
import { besideFolder, extractInto, swapBinds } from "./swap.ts";
import { describeKeptPaths, keptPaths, liveSecretEntries, recordedPaths } from "./kept-paths.ts";
import { parsePathPatterns } from "../../config/path-patterns.ts";
import type { StopJournal } from "../../lifecycle/journal.ts";

/** Containers outside the project are never stopped by composure: say so when they use a volume. */
async function warnAboutForeignWriters(ctx: BackupContext<unknown>): Promise<void> {
  for (const selected of ctx.mounts.filter((entry) => entry.mount.type === "volume")) {
    const foreign = (await runningUsersOfVolume(selected.mount.source)).filter(
      (user) => user.labels["com.docker.compose.project"] !== ctx.project.name && !user.labels[helperLabel],
    );
    for (const user of foreign) {
      log.warn(`volume ${selected.mount.source} is also used by container ${user.name} outside project ${ctx.project.name}: it keeps running (composure stops only the project's containers), so its writes during the capture may not be consistent`);
    }
  }
}

/** Services of the project that write to any of these volumes (they must stop together). */
function writersOf(ctx: BackupContext<unknown>, sources: string[]): string[] {
  return ctx.project.services
    .filter((service) => service.containers.some((container) => container.mounts.some((mount) => sources.includes(mount.source) && !mount.readOnly)))
    .map((service) => service.name);
}

/** What stopping a service with a helper beside it needs of a backup's or a restore's context. */
type StopContext = { helperImage: string; project: { name: string }; journal: StopJournal; config: { stop_timeout_seconds: number } };

/** Starts the stopped containers again while the helper goes; a failed restart is the error. */
async function restartWhileClosing(stoppage: Stoppage, close: () => Promise<void>): Promise<void> {
  const [restarted] = await Promise.allSettled([stoppage.release(), close()]);
  if (restarted.status === "rejected") throw restarted.reason;
}

/**
 * Stops `containers` while a helper with `binds` starts, and hands back the release that starts
 * them again while the helper goes: neither adds downtime. Returns once both are done; when the
 * helper cannot start, the containers are started again and its error thrown.
 */
async function stopWithHelper(ctx: StopContext, containers: ContainerInfo[], binds: string[]): Promise<{ stoppage: Stoppage; session: HelperSession; release: Release }> {
  const starting = openHelper(ctx.helperImage, ctx.project.name, binds);
  starting.catch(() => undefined); // awaited below
  const close = () => starting.then((opened) => opened.close(), () => undefined);
  const stoppage = await stopContainers(containers, ctx.journal, ctx.config.stop_timeout_seconds).catch(async (error: unknown) => {
    await close();
    throw error;
  });
  const release = () => restartWhileClosing(stoppage, close);
  const session = await starting.catch(async (error: unknown) => {
    await release();
    throw error;
  });
  return { stoppage, session, release };
}

/**
 * Stop mode's backup: the capture begins while the helper starts and the service still runs, and
 * does what it can before reading (restic opens the repository), then, once the helper runs,
 * `containers` stop; the gate opens when the pipeline calls capture(). Downtime is the reading,
 * not the preparing. When the capture fails before it is ready, the helper cannot start, the stop
 * fails, or the session is released without a capture, nothing was read and nothing stays stopped.
 */
async function captureWhileStopped(ctx: StopContext, containers: ContainerInfo[], binds: string[], capture: (session: HelperSession, gate: SourceGate) => Promise<Artifact[]>): Promise<CaptureSession> {
  const session = await beginHelper(ctx.helperImage, ctx.project.name, binds);
  const gate = createGate();
  const capturing = capture(session, gate.gate);
  capturing.catch(() => undefined); // the pipeline awaits it through capture()
  let stoppage: Stoppage;
  try {
    await Promise.race([Promise.all([gate.armed, session.started]), capturing]); // the capture settles first only when it failed
    await failpoint("backup:stop");
    stoppage = await stopContainers(containers, ctx.journal, ctx.config.stop_timeout_seconds);
  } catch (error) {
    gate.fail(error);
    await session.close();
    throw error;
  }
  return {
    capture: () => {
      gate.open();
      return capturing;
    },
    release: async () => {
      gate.fail(new Error("released without a capture")); // nothing once the gate is open
      await restartWhileClosing(stoppage, () => session.close());
    },
    stopped: stoppage.stopped.map((container) => container.name),
    downtimeSeconds: stoppage.downtimeSeconds,
  };
}

const options = z.object({}).strict();

export const volumeStrategy: Strategy<z.infer<typeof options>> = {
  kind: "volume",
  offline: true,
  options,
  stopsForCapture: (settings) => settings.stop !== false,

  async openSession(ctx) {
    await warnAboutForeignWriters(ctx);
    const hot = ctx.settings.stop === false;
    const paths = { excludePaths: ctx.settings.exclude_paths, secretPaths: ctx.settings.secret_paths };
    if (hot || ctx.mounts.length === 0) return hotSession(() => captureMounts(ctx.helperImage, ctx.project.name, ctx.mounts, ctx.store, { ...paths, live: hot }));
    const services = [ctx.service.name, ...writersOf(ctx, ctx.mounts.map((selected) => selected.mount.source))];
    return captureWhileStopped(ctx, containersToStop(ctx.project, [...new Set(services)]), mountBinds(ctx.mounts), (session, gate) =>
      captureMounts(ctx.helperImage, ctx.project.name, ctx.mounts, ctx.store, { ...paths, session, gate }),
    );
  },

  async restore(ctx, artifacts) {
    const done: string[] = [];
    for (const artifact of artifacts) {
      if (!artifact.volume) throw new Error(`artifact ${artifact.path} does not say which volume it holds`);
      done.push(await restoreVolume(ctx, artifact, artifact.volume));
    }
    return done;
  },

  async probe(ctx, recorded) {
    const volumes: Record<string, TreeFacts> = {};
    const differences: string[] = [];
    const notes: string[] = [];
    if (!recorded) {
      // Without a run to compare with: the facts of what the service's settings back up.
      const { selected: mounts } = selectMounts(ctx.project, ctx.service, ctx.settings, () => true);
      await withHelper(ctx.helperImage, ctx.project.name, mountBinds(mounts), async (helper) => {
        const exclude = parsePathPatterns(ctx.settings.exclude_paths ?? []);
        for (const [index, selected] of mounts.entries()) volumes[selected.mount.source] = await treeFacts(helper, mountDir(index), exclude);
      });
      return { ok: true, differences: [], facts: { volumes } };
    }
    for (const artifact of recorded.filter((candidate) => candidate.volume && isTreeFacts(candidate.facts))) {
      const target = restoreTarget(ctx.project, ctx.service, artifact.volume!, ctx.sourceProject ?? ctx.project.name);
      const live = await withHelper(ctx.helperImage, ctx.project.name, [`${target.name}:/volume:ro`], (helper) => treeFacts(helper, "/volume", parsePathPatterns(recordedPaths(artifact, "excludePaths"))));
      volumes[target.name] = live;
      const found = compareTreeFacts(artifact.volume!.composeName ?? artifact.volume!.name, artifact.facts as unknown as TreeFacts, live);
      if ((artifact.facts as unknown as TreeFacts).live) notes.push(...found.map((line) => `${line} (hot-mode backup: written during the capture)`));
      else differences.push(...found);
    }
    return { ok: differences.length === 0, differences, facts: { volumes, differences, ...(notes.length ? { notes } : {}) } };
  },
};

/**
 * The volume (or bind) of the target project an artifact goes into: the same one when restoring
 * into the project it was taken of; otherwise the volume the target service mounts where the
 * source service did, else the target project's compose volume of the same name. Never the source
 * project's own external volume or bind: that would overwrite the source's data.
 */
export function restoreTarget(project: ProjectInfo, service: ServiceInfo | undefined, facts: VolumeFacts, sourceProject: string): { name: string; kind: "volume" | "bind"; labels: Record<string, string> } {
  if (sourceProject === project.name) return { name: facts.name, kind: facts.kind, labels: facts.labels ?? {} };
  const mount = facts.destination ? service?.containers.flatMap((container) => container.mounts).find((candidate) => candidate.destination === facts.destination) : undefined;
  if (mount) return { name: mount.source, kind: mount.type, labels: {} };
  if (facts.kind === "volume" && !facts.external && facts.composeName) {
    const labels = { ...(facts.labels ?? {}), "com.docker.compose.project": project.name };
    return { name: `${project.name}_${facts.composeName}`, kind: "volume", labels };
  }
  throw new Error(
    `${facts.kind} ${facts.name} of project ${sourceProject} is ${facts.kind === "bind" ? "a bind mount" : "an external volume"}: restoring it into project ${project.name} would overwrite ${sourceProject}'s data. ` +
      `Create ${project.name}'s containers first (docker compose -p ${project.name} up --no-start) with their own volume${facts.destination ? ` at ${facts.destination}` : ""}`,
  );
}

async function restoreVolume(ctx: RestoreContext<unknown>, artifact: Artifact, facts: VolumeFacts): Promise<string> {
  const target = restoreTarget(ctx.project, ctx.service, facts, ctx.sourceProject);
  const exists = target.kind === "bind" || (await inspectVolume(target.name)) !== undefined;
  const users = ctx.project.services.filter((service) => service.containers.some((container) => container.mounts.some((mount) => mount.source === target.name)));
  const toStop = containersToStop(ctx.project, users.map((service) => service.name));
  const what = `${target.kind} ${target.name} from ${artifact.path}`;
  if (ctx.dryRun) {
    const paths = describeKeptPaths(ctx, artifact, exists, { liveSecrets: exists ? await liveSecretEntries(ctx, artifact, target.name) : undefined });
    return [`would restore ${what}: ${exists ? "replace its content" : "create it"}`, ...paths, `stop ${toStop.map((c) => c.name).join(", ") || "nothing"}`, exists && ctx.rescue ? "keep a rescue copy first" : "no rescue copy"].join("; ");
  }
  await ctx.reader.inspect(artifact); // what can be checked without the service down
  const paths = describeKeptPaths(ctx, artifact, exists, { done: true });
  if (!exists) {
    log.info(`creating volume ${target.name} (it does not exist on this host)`);
    await createVolume({ name: target.name, driver: target.name === facts.name ? (facts.driver ?? "local") : "local", labels: target.labels, options: {} });
  }
  const beside = await besideFolder(target, toStop.map((container) => container.id));
  const { stoppage, session, release } = await stopWithHelper(ctx, toStop, swapBinds(target.name, beside));
  let swapped: Awaited<ReturnType<typeof extractInto>>;
  try {
    await failpoint("restore:stop");
    if (exists && ctx.rescue) await keepRescueCopy(ctx, { ...facts, name: target.name, kind: target.kind });
    const keep = exists ? keptPaths(ctx, artifact).patterns : [];
    swapped = await extractInto(session, target.name, beside, (helper, pipe, dir) => ctx.reader.extract(artifact, helper, pipe, dir, artifact.path), ctx.journal, keep);
  } finally {
    await release();
  }
  await swapped.afterRestart(ctx.helperImage, ctx.project.name);
  const stopped = stoppage.stopped.length ? ` (stopped ${stoppage.stopped.map((c) => c.name).join(", ")} for ${stoppage.downtimeSeconds().toFixed(1)} s)` : "";
  return [`restored ${what}${stopped}`, ...paths].join("; ");
}

async function keepRescueCopy(ctx: RestoreContext<unknown>, facts: VolumeFacts): Promise<void> {
  const rescue = ctx.rescue!;
  const store = await rescue.store(ctx.serviceName);
  const selected: SelectedMount = {
    mount: { type: facts.kind, source: facts.name, destination: "", readOnly: true },
    archiveName: facts.composeName ?? facts.name,
    sharedWith: facts.sharedWith ?? [],
  };
  const [artifact] = await captureMounts(ctx.helperImage, ctx.project.name, [selected], store);
  rescue.add(ctx.serviceName, artifact);
  log.info(`kept a rescue copy of ${facts.name} as ${artifact.path} of the rescue run`);
}

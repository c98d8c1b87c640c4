// Helper containers: a small image (busybox by default) kept alive with `sleep` while composure
// runs commands in it by exec. Helpers log nothing (log driver "none": no second copy of a
// backup on the host's disk), have no network, and carry a label so leftovers of a killed run
// are removed by the next one.
import { type Writable } from "node:stream";
import { createPipeDir, type PipeDir } from "./pipe-dir.ts";
import { execCapture, execStreaming, type ExecOptions } from "./containers.ts";
import { getEngine, isLocalEngine, retryWhileEngineUnavailable } from "./engine.ts";
import { processHostname } from "../process-identity.ts";

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

/**
 * Binds every helper of this process gets besides its own: the repository engine's restic, its
 * repository and cache, set once a command knows it uses them (a process-wide setting, like the
 * archive codec, not per-run state).
 */
const everyHelper = new Set<string>();

export function mountInEveryHelper(binds: string[]): void {
  for (const bind of binds) everyHelper.add(bind);
}

/** No log (no second copy of a backup on the host's disk) and no network unless asked for. */
const hostConfig = (spec: HelperSpec) => ({ Binds: [...spec.binds, ...everyHelper], LogConfig: { Type: "none", Config: {} }, NetworkMode: spec.networkMode ?? "none" });

/**
 * Starts a one-off helper that runs `script` (sh -c) on its own and removes itself when done,
 * labelled `label` rather than as a helper: the next run's leftover removal must not stop it.
 */
export async function startDetached(spec: HelperSpec, script: string, label: string): Promise<void> {
  const container = await getEngine().createContainer({
    Image: spec.image,
    Entrypoint: ["sh", "-c"],
    Cmd: [script],
    Labels: { [label]: spec.project },
    HostConfig: { ...hostConfig(spec), AutoRemove: true },
  });
  await container.start();
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
    // Names this process: restic records it in its locks, and a later command clears the locks of
    // killed runs. (A helper in another container's network has that container's host name.)
    ...(spec.networkMode?.startsWith("container:") ? {} : { Hostname: processHostname() }),
    Labels: { [helperLabel]: spec.project },
    HostConfig: hostConfig(spec),
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
      // a daemon restarting under us is waited for, like the service's restart: no helper is left behind
      await retryWhileEngineUnavailable("remove the helper container", () => container.remove({ force: true, v: false })).catch(() => undefined);
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

/** A helper with the FIFO directory (local engine), and how to remove both. */
export interface HelperSession {
  helper: Helper;
  pipe: PipeDir | undefined;
  /** Resolves once the helper runs (its commands wait for that); rejects when it cannot start. */
  started: Promise<void>;
  close(): Promise<void>;
}

/**
 * Starts a helper that mounts `binds` (and the FIFO directory on a local engine) and hands the
 * session over once the FIFO folder exists, while the container still starts: whatever does not
 * need the helper goes on meanwhile (restic on the host opens the repository).
 */
export async function beginHelper(image: string, project: string, binds: string[]): Promise<HelperSession> {
  const pipe = isLocalEngine() ? await createPipeDir() : undefined;
  const starting = startHelper({ image, project, binds: pipe ? [...binds, pipe.bind] : binds });
  starting.catch(() => undefined); // the session's `started` and its commands report it
  let running: Helper | undefined;
  const started = starting.then((helper) => void (running = helper));
  started.catch(() => undefined); // for those who await it (openHelper); a session closed unawaited must not crash the run
  const helper: Helper = {
    get id() {
      if (!running) throw new Error("the helper container has not started yet");
      return running.id;
    },
    run: async (argv, options) => (await starting).run(argv, options),
    stream: async (argv, stdout, options) => (await starting).stream(argv, stdout, options),
    remove: async () => (await starting.catch(() => undefined))?.remove(),
  };
  // The pipe folder goes after the container: one closed while it still starts needs the folder it mounts.
  return { helper, pipe, started, close: async () => void (await helper.remove(), await pipe?.remove()) };
}

/** beginHelper for each list of binds; when one cannot begin, those begun are closed again. */
export async function beginHelpers(image: string, project: string, bindLists: string[][]): Promise<HelperSession[]> {
  const begun = await Promise.allSettled(bindLists.map((binds) => beginHelper(image, project, binds)));
  const sessions = begun.flatMap((result) => (result.status === "fulfilled" ? [result.value] : []));
  const failed = begun.find((result) => result.status === "rejected");
  if (failed) {
    await Promise.all(sessions.map((session) => session.close()));
    throw failed.reason;
  }
  return sessions;
}

/** Starts a helper that mounts `binds` (and the FIFO directory on a local engine): beginHelper, once it runs. */
export async function openHelper(image: string, project: string, binds: string[]): Promise<HelperSession> {
  const session = await beginHelper(image, project, binds);
  try {
    await session.started;
  } catch (error) {
    await session.close();
    throw error;
  }
  return session;
}

/** Runs `work` with a helper that mounts `binds` (and the FIFO directory on a local engine). */
export async function withHelper<T>(image: string, project: string, binds: string[], work: (helper: Helper, pipe: PipeDir | undefined) => Promise<T>): Promise<T> {
  const session = await openHelper(image, project, binds);
  try {
    return await work(session.helper, session.pipe);
  } finally {
    await session.close();
  }
}

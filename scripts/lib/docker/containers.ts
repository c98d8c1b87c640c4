// Containers: listing by label, inspection, stop/start, and exec with demultiplexed output.
import { once } from "node:events";
import { PassThrough, type Duplex, type Readable, type Writable } from "node:stream";
import { getEngine } from "./engine.ts";

export interface MountInfo {
  type: "volume" | "bind";
  /** Volume name, or host path for a bind mount. */
  source: string;
  destination: string;
  readOnly: boolean;
}

export interface ContainerInfo {
  id: string;
  name: string;
  image: string;
  labels: Record<string, string>;
  running: boolean;
  startedAt: string;
  mounts: MountInfo[];
  /** HostConfig.NetworkMode, e.g. "container:<id>" for `network_mode: service:x`. */
  networkMode: string;
  /** Names of containers this one links to (legacy `links:`). */
  links: string[];
  env: string[];
  /** Its IP addresses on its networks (how peers such as a Cassandra ring know it). */
  addresses: string[];
}

export async function listContainerIds(labelFilters: string[]): Promise<string[]> {
  const summaries = await getEngine().listContainers({ all: true, filters: { label: labelFilters } });
  return summaries.map((summary) => summary.Id);
}

/** Running containers (of any project) that mount the named volume. */
export async function runningUsersOfVolume(volume: string): Promise<{ id: string; name: string; labels: Record<string, string> }[]> {
  const summaries = await getEngine().listContainers({ filters: { volume: [volume] } });
  return summaries.map((summary) => ({ id: summary.Id, name: (summary.Names[0] ?? summary.Id).replace(/^\//, ""), labels: summary.Labels ?? {} }));
}

export async function inspectContainer(id: string): Promise<ContainerInfo> {
  const info = await getEngine().getContainer(id).inspect();
  return {
    id: info.Id,
    name: info.Name.replace(/^\//, ""),
    image: info.Config.Image,
    labels: info.Config.Labels ?? {},
    running: info.State.Running,
    startedAt: info.State.StartedAt,
    mounts: (info.Mounts ?? [])
      .filter((mount) => mount.Type === "volume" || mount.Type === "bind")
      .map((mount) => ({
        type: mount.Type as "volume" | "bind",
        source: mount.Type === "volume" ? (mount.Name ?? "") : mount.Source,
        destination: mount.Destination,
        readOnly: !mount.RW,
      })),
    networkMode: info.HostConfig.NetworkMode ?? "",
    links: (info.HostConfig.Links ?? []).map((link: string) => link.split(":")[0].replace(/^\//, "")),
    env: info.Config.Env ?? [],
    addresses: Object.values(info.NetworkSettings?.Networks ?? {}).flatMap((network) => [network.IPAddress, network.GlobalIPv6Address].filter((address): address is string => Boolean(address))),
  };
}

export async function stopContainer(id: string, timeoutSeconds: number): Promise<void> {
  try {
    await getEngine().getContainer(id).stop({ t: timeoutSeconds });
  } catch (error) {
    if ((error as { statusCode?: number }).statusCode !== 304) throw error; // 304: already stopped
  }
}

export async function startContainer(id: string): Promise<void> {
  try {
    await getEngine().getContainer(id).start();
  } catch (error) {
    if ((error as { statusCode?: number }).statusCode !== 304) throw error; // 304: already running
  }
}

export async function isRunning(id: string): Promise<boolean> {
  try {
    return (await getEngine().getContainer(id).inspect()).State.Running;
  } catch {
    return false;
  }
}

export interface ExecOptions {
  env?: string[];
  user?: string;
  workingDir?: string;
  /** Kills the command (on a local engine) and fails after this many milliseconds. */
  timeoutMs?: number;
  /** Fed to the command's stdin, which is then closed (a Buffer, or a stream of any size). */
  stdin?: Buffer | Readable;
  /** Aborting drops the connection: the command sees a broken pipe, and this call rejects. */
  signal?: AbortSignal;
}

export interface ExecResult {
  exitCode: number;
  stderr: string;
}

/**
 * Runs argv in a running container; stdout goes to `stdout` with backpressure (a slow consumer
 * such as zstd slows the producer down, memory stays flat), stderr is collected (capped).
 * Exec streams are not written to the container's log. Environment values (passwords) travel
 * in the exec's Env, never in any argv.
 */
export async function execStreaming(id: string, argv: string[], stdout: Writable, options: ExecOptions = {}): Promise<ExecResult> {
  const exec = await getEngine().getContainer(id).exec({
    Cmd: argv,
    Env: options.env,
    User: options.user,
    WorkingDir: options.workingDir,
    AttachStdout: true,
    AttachStderr: true,
    AttachStdin: Boolean(options.stdin),
  });
  const stream = (await exec.start({ hijack: true, stdin: Boolean(options.stdin) })) as Duplex;
  const stderr = collectCapped(64 * 1024);
  let timedOut = false;
  const timer = options.timeoutMs
    ? setTimeout(() => {
        timedOut = true;
        void killExec(exec.id, stream);
      }, options.timeoutMs)
    : undefined;
  const abort = () => stream.destroy(new Error(`command ${JSON.stringify(argv[0])} was aborted`));
  options.signal?.addEventListener("abort", abort, { once: true });
  try {
    const feeding = feedStdin(stream, options.stdin);
    await demultiplex(stream, stdout, stderr.sink, options.signal);
    await feeding;
  } catch (error) {
    if (!timedOut) throw error;
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener("abort", abort);
  }
  if (timedOut) throw new Error(`command ${JSON.stringify(argv[0])} timed out after ${options.timeoutMs} ms and was killed`);
  return { exitCode: await exitCodeOf(exec.id), stderr: stderr.text() };
}

async function feedStdin(stream: Duplex, stdin: Buffer | Readable | undefined): Promise<void> {
  if (!stdin) return;
  if (Buffer.isBuffer(stdin)) {
    stream.end(stdin);
    return;
  }
  for await (const chunk of stdin) {
    if (!stream.write(chunk)) await once(stream, "drain");
  }
  stream.end(); // half-close: the command sees end of input
}

/** Docker's multiplexed exec stream: frames of [type, 0, 0, 0, size(4, big endian), payload]. */
async function demultiplex(source: Duplex, stdout: Writable, stderr: Writable, signal?: AbortSignal): Promise<void> {
  let pending: Buffer = Buffer.alloc(0);
  for await (const chunk of source) {
    pending = pending.length ? Buffer.concat([pending, chunk as Buffer]) : (chunk as Buffer);
    while (pending.length >= 8) {
      const size = pending.readUInt32BE(4);
      if (pending.length < 8 + size) break;
      const target = pending[0] === 2 ? stderr : stdout;
      const payload = pending.subarray(8, 8 + size);
      pending = pending.subarray(8 + size);
      if (!target.write(payload)) await once(target, "drain", { signal });
    }
  }
}

/** A command that keeps its stdin and stdout open to the caller: a conversation (see execConversation). */
export interface Conversation {
  /** The command's stdin; end() is the end of input it sees. */
  input: Writable;
  /** Its stdout, ended when the command ends. */
  output: Readable;
  /** Settles when the command has ended: its exit code and stderr (capped). */
  done: Promise<ExecResult>;
  /** Kills the command (on a local engine) and drops the connection. */
  kill(): Promise<void>;
}

/** Runs argv in a running container for a conversation over its stdin and stdout. */
export async function execConversation(id: string, argv: string[]): Promise<Conversation> {
  const exec = await getEngine().getContainer(id).exec({ Cmd: argv, AttachStdout: true, AttachStderr: true, AttachStdin: true });
  const stream = (await exec.start({ hijack: true, stdin: true })) as Duplex;
  const output = new PassThrough();
  const stderr = collectCapped(64 * 1024);
  const done = demultiplex(stream, output, stderr.sink)
    .finally(() => output.end())
    .then(async () => ({ exitCode: await exitCodeOf(exec.id), stderr: stderr.text() }));
  done.catch(() => undefined); // the caller awaits it
  return { input: stream, output, done, kill: () => killExec(exec.id, stream) };
}

/** Runs argv and returns its (small) stdout as text. */
export async function execCapture(id: string, argv: string[], options: ExecOptions = {}): Promise<ExecResult & { stdout: string }> {
  const stdout = collectCapped(16 * 1024 * 1024);
  const result = await execStreaming(id, argv, stdout.sink, options);
  return { ...result, stdout: stdout.text() };
}

async function exitCodeOf(execId: string): Promise<number> {
  const exec = getEngine().getExec(execId);
  for (let attempt = 0; attempt < 100; attempt++) {
    const info = await exec.inspect();
    if (!info.Running && info.ExitCode !== null) return info.ExitCode;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return -1;
}

async function killExec(execId: string, stream: Duplex): Promise<void> {
  try {
    const info = await getEngine().getExec(execId).inspect();
    if (info.Pid) process.kill(info.Pid, "SIGKILL");
  } catch {
    // the process may be gone already, or the engine is remote: the stream is dropped anyway
  }
  stream.destroy();
}

function collectCapped(limit: number) {
  const chunks: Buffer[] = [];
  let size = 0;
  const sink = new PassThrough();
  sink.on("data", (chunk: Buffer) => {
    if (size < limit) chunks.push(chunk.subarray(0, limit - size));
    size += chunk.length;
  });
  return { sink, text: () => Buffer.concat(chunks).toString("utf8") };
}

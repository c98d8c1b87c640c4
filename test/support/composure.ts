// Test support: run composure's scripts as a user would (a child process with env vars), drive
// real Compose projects, and look into volumes through a busybox container.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { $ } from "zx";

export const repoRoot = path.resolve(import.meta.dirname, "../..");
/** A fixture image (test/images/<name>), or the one COMPOSURE_IMAGE_<NAME> names (e.g. an official image). */
export const fixtureImage = (name: string) => process.env[`COMPOSURE_IMAGE_${name.toUpperCase()}`] ?? `composure-fixture/${name}:latest`;
export const busyboxImage = fixtureImage("busybox");

/**
 * node's arguments for a composure command: the bundle `make` runs (dist/<name>.mjs; `make test`
 * builds it first). A bundle older than the sources would test old code: that is an error.
 */
export function commandArguments(name: string): string[] {
  const built = path.join(repoRoot, "dist", ".built");
  if (!existsSync(built)) throw new Error("dist/ is missing: run `make install` (make test builds it) before the integration tests");
  const newest = newestSource(path.join(repoRoot, "scripts"));
  if (newest.mtimeMs > statSync(built).mtimeMs) throw new Error(`dist/ is older than ${path.relative(repoRoot, newest.file)}: run \`make install\` to rebuild it`);
  return [path.join(repoRoot, "dist", `${name}.mjs`)];
}

function newestSource(dir: string): { file: string; mtimeMs: number } {
  let newest = { file: dir, mtimeMs: 0 };
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile() || !entry.name.endsWith(".ts")) continue;
    const file = path.join(entry.parentPath, entry.name);
    const { mtimeMs } = statSync(file);
    if (mtimeMs > newest.mtimeMs) newest = { file, mtimeMs };
  }
  return newest;
}

export interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

/** What the tests add to a composure command's environment, then `env`. */
export function commandEnvironment(env: Record<string, string>): Record<string, string> {
  // METRICS_DIR: keep test runs' node_exporter textfiles out of the repo's exporters/textfile/
  return { COMPOSURE_HELPER_IMAGE: busyboxImage, METRICS_DIR: path.join(os.tmpdir(), "composure-test-metrics"), ...env };
}

/** Runs composure command <name> (make <name>) with the given environment; never throws on a non-zero exit. */
export function composure(name: string, env: Record<string, string>, args: string[] = []): Promise<Outcome> & { pid?: number; kill(signal: NodeJS.Signals): void } {
  const program = $({
    cwd: repoRoot,
    env: { ...process.env, ...commandEnvironment(env) },
    stdio: ["ignore", "pipe", "pipe"],
    quiet: true,
    nothrow: true,
  })`exec ${process.execPath} ${[...commandArguments(name), ...args]}`; // exec: pid and signals are composure's own
  const outcome = (async () => {
    const { exitCode, signal, stdout, stderr } = await program;
    return { code: exitCode ?? (signal ? 128 : 1), stdout, stderr };
  })();
  return Object.assign(outcome, { pid: program.pid, kill: (signal: NodeJS.Signals) => program.child?.kill(signal) });
}

export async function sh(command: string, args: string[], input?: string): Promise<string> {
  // A Buffer, even when empty: zx writes it and closes stdin (it skips an empty string).
  const output = await $({ quiet: true, nothrow: true, input: input === undefined ? undefined : Buffer.from(input) })`${command} ${args}`;
  if (output.exitCode !== 0) throw new Error(`Command failed: ${[command, ...args].join(" ")} (exit ${output.exitCode ?? output.signal})\n${output.stderr}`);
  return output.stdout;
}

export async function docker(...args: string[]): Promise<string> {
  return (await sh("docker", args)).trim();
}

/** Fails (never skips) when no Docker engine answers: CI must have one. */
export async function requireDocker(): Promise<void> {
  try {
    await docker("info", "--format", "{{.ServerVersion}}");
  } catch (error) {
    throw new Error(`integration tests need a running Docker engine (start dockerd): ${(error as Error).message}`);
  }
}

const composeCommand = async (): Promise<string[]> => {
  try {
    await sh("docker", ["compose", "version"]);
    return ["docker", "compose"];
  } catch {
    return ["docker-compose"];
  }
};

/** A Compose project from YAML text, in its own temporary folder, with a unique name. */
export class ComposeProject {
  readonly dir: string;
  readonly file: string;

  constructor(readonly name: string, yaml: string) {
    this.dir = mkdtempSync(path.join(os.tmpdir(), `composure-test-${name}-`));
    this.file = path.join(this.dir, "compose.yml");
    writeFileSync(this.file, yaml.replaceAll("$BUSYBOX", busyboxImage));
  }

  async compose(...args: string[]): Promise<string> {
    const [command, ...prefix] = await composeCommand();
    return sh(command, [...prefix, "-p", this.name, "-f", this.file, ...args]);
  }

  up = () => this.compose("up", "-d");
  down = () => this.compose("down", "-v", "--remove-orphans");

  async containerId(service: string): Promise<string> {
    return (await this.compose("ps", "-q", service)).trim().split("\n")[0];
  }

  async startedAt(service: string): Promise<string> {
    return docker("inspect", "-f", "{{.State.StartedAt}}", await this.containerId(service));
  }

  async running(service: string): Promise<boolean> {
    return (await docker("inspect", "-f", "{{.State.Running}}", await this.containerId(service))) === "true";
  }

  volume = (name: string) => `${this.name}_${name}`;
}

/** Runs a shell script in a throwaway busybox container with `volumes` mounted ("vol:/path"). */
export async function inVolumes(volumes: string[], script: string): Promise<string> {
  const mounts = volumes.flatMap((volume) => ["-v", volume]);
  return sh("docker", ["run", "--rm", "--log-driver", "none", ...mounts, busyboxImage, "sh", "-c", script]);
}

/**
 * A listing of everything in a volume that a restore must bring back: names, type+mode,
 * owner, mtime, size, link count, symlink target, and a hash of each file's content.
 */
export async function snapshotVolume(volume: string): Promise<string> {
  const script = [
    "cd /v",
    "find . ! -type d -exec stat -c '%n|%f|%u:%g|%Y|%s|%h|%N' {} + | sort",
    "find . -type d -exec stat -c '%n|%f|%u:%g|%Y' {} + | sort",
    "find . -type f -exec sha256sum {} + | sort",
  ].join(" && ");
  return sh("docker", ["run", "--rm", "-v", `${volume}:/v:ro`, busyboxImage, "sh", "-c", script]);
}

/** What sits next to a local volume's _data in the engine's folder of that volume (restores stage there). */
export async function besideData(volume: string): Promise<string[]> {
  const mountpoint = (await sh("docker", ["volume", "inspect", "-f", "{{.Mountpoint}}", volume])).trim();
  return readdirSync(path.dirname(mountpoint)).filter((name) => name !== "_data").sort();
}

export function tempDir(prefix: string): string {
  return mkdtempSync(path.join(os.tmpdir(), `composure-${prefix}-`));
}

/**
 * A Compose project of idle busybox services: `services` maps each service to its mounts
 * ("volume:/path" or "./dir:/path"); named volumes are declared for you. `labels` adds labels.
 */
export function busyboxProject(prefix: string, services: Record<string, string[]>, labels: Record<string, Record<string, string>> = {}): ComposeProject {
  const named = new Set(Object.values(services).flat().map((mount) => mount.split(":")[0]).filter((source) => !source.startsWith(".") && !source.startsWith("/")));
  const blocks = Object.entries(services).map(([name, mounts]) => {
    const labelLines = Object.entries(labels[name] ?? {}).map(([key, value]) => `      ${key}: ${JSON.stringify(value)}`);
    return [`  ${name}:`, "    image: $BUSYBOX", "    init: true", '    command: ["sleep", "100000"]', `    volumes: ${JSON.stringify(mounts)}`, ...(labelLines.length ? ["    labels:", ...labelLines] : [])].join("\n");
  });
  const volumes = named.size ? `volumes: { ${[...named].map((name) => `${name}: {}`).join(", ")} }` : "";
  return new ComposeProject(`${prefix}${process.pid}`, `version: "3.8"\nservices:\n${blocks.join("\n")}\n${volumes}\n`);
}

/** Runs `attempt` until it succeeds (a service still starting), once every `pauseMs`, for up to `seconds`. */
export async function eventually<T>(what: string, attempt: () => Promise<T>, seconds = 180, pauseMs = 1000): Promise<T> {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    try {
      return await attempt();
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`${what}: ${(error as Error).message}`);
      await new Promise((resolve) => setTimeout(resolve, pauseMs));
    }
  }
}

/**
 * Waits until `check` answers true, asking once every `pauseMs` for up to `timeoutMs`
 * (milliseconds, unlike `eventually`'s seconds); a check that throws counts as not yet.
 */
export async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 90_000, pauseMs = 500): Promise<void> {
  await eventually(
    `timed out waiting for ${what}`,
    async () => {
      if (!(await check())) throw new Error(`not so after ${timeoutMs / 1000} s`);
    },
    timeoutMs / 1000,
    pauseMs,
  );
}

/** Seconds since `started` (a performance.now() value), to a tenth. */
export const seconds = (started: number) => Math.round((performance.now() - started) / 100) / 10;

/** A TCP port nothing listens on at the moment, on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/**
 * The runs of one project in a backup destination (`projectDir` = <destination>/<project>):
 * `runIds()` lists the run folders, oldest first ("any": every folder named like a run, with
 * -2 and -rescue suffixes and incomplete ones; "plain": only ids without a suffix, so never a
 * rescue run), and throws when the folder does not exist; `manifestOf(runId)` reads a run's manifest.json.
 */
export function backupsOf(projectDir: string, which: "any" | "plain" = "any") {
  const pattern = which === "plain" ? /^\d{8}T\d{6}Z$/ : /^\d{8}T/;
  return {
    runIds: (): string[] => readdirSync(projectDir).filter((name) => pattern.test(name)).sort(),
    manifestOf: (runId: string): any => JSON.parse(readFileSync(path.join(projectDir, runId, "manifest.json"), "utf8")),
  };
}

/**
 * Container ids of a project asked for once per service (docker-compose v1 takes a second or
 * more per call; ids survive restarts), and what the tests read through them.
 */
export function containersOf(project: ComposeProject) {
  const ids = new Map<string, string>();
  const containerOf = async (service: string): Promise<string> => {
    if (!ids.has(service)) ids.set(service, await project.containerId(service));
    return ids.get(service)!;
  };
  return {
    containerOf,
    startedAt: async (service: string) => docker("inspect", "-f", "{{.State.StartedAt}}", await containerOf(service)),
    isRunning: async (service: string) => (await docker("inspect", "-f", "{{.State.Running}}", await containerOf(service))) === "true",
  };
}

/**
 * Holds a machine-wide lock named `name` (a directory under the temp folder) until the returned
 * release runs: test files that each start heavy engines (Cassandra) take turns instead of
 * running them side by side. A lock whose holder died is taken over.
 */
export async function takeTurn(name: string, timeoutMs = 1_500_000): Promise<() => void> {
  const dir = path.join(os.tmpdir(), `composure-test-turn-${name}`);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      mkdirSync(dir);
      writeFileSync(path.join(dir, "pid"), String(process.pid));
      return () => releaseTurnIfHeld(dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
    let holder = 0;
    try {
      holder = Number(readFileSync(path.join(dir, "pid"), "utf8")) || 0;
    } catch {
      // being written, or just released
    }
    if (holder && !existsSync(`/proc/${holder}`)) rmSync(dir, { recursive: true, force: true });
    if (Date.now() > deadline) throw new Error(`waited ${timeoutMs / 1000} s for the ${name} turn held by pid ${holder}`);
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
}

/** Removes the turn only while this process holds it (never another holder's, taken over after a crash). */
function releaseTurnIfHeld(dir: string): void {
  try {
    if (Number(readFileSync(path.join(dir, "pid"), "utf8")) !== process.pid) return;
  } catch {
    return;
  }
  rmSync(dir, { recursive: true, force: true });
}

/**
 * Waits until no container of `image` runs on the engine (another suite's cluster going down),
 * then fails naming them if some still run: suites that start a JVM cluster need the machine alone.
 * Test projects are named `cmpt-<name><pid>`: the containers of one whose test process is gone
 * (killed before its `after` ran) are removed first, with their volumes and networks.
 */
export async function whenNoneRuns(image: string, timeoutMs = 600_000): Promise<void> {
  const running = async () => (await docker("ps", "--filter", `ancestor=${image}`, "--format", '{{.Label "com.docker.compose.project"}}')).split("\n").filter(Boolean);
  for (const project of new Set(await running())) {
    const pid = /^cmpt-[a-z0-9-]*?(\d+)$/.exec(project)?.[1];
    if (pid && !existsSync(`/proc/${pid}`)) await removeProject(project);
  }
  const deadline = Date.now() + timeoutMs;
  while ((await running()).length && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5000));
  const left = await running();
  if (left.length) throw new Error(`containers of ${image} in projects ${[...new Set(left)].join(", ")} still run on this engine after ${timeoutMs / 1000} s: one cluster at a time on this machine`);
}

/** Removes every container, volume and network of a compose project, by its labels. */
async function removeProject(project: string): Promise<void> {
  const filter = `label=com.docker.compose.project=${project}`;
  const ids = async (kind: string[]) => (await docker(...kind, "-q", "--filter", filter)).split("\n").filter(Boolean);
  const containers = await ids(["ps", "-a"]);
  if (containers.length) await docker("rm", "-f", "-v", ...containers);
  const volumes = await ids(["volume", "ls"]);
  if (volumes.length) await docker("volume", "rm", ...volumes);
  const networks = await ids(["network", "ls"]);
  if (networks.length) await docker("network", "rm", ...networks);
}

/** A log line without the timestamp and level a non-TTY run puts before it. */
const withoutLogPrefix = (line: string) => line.replace(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ (?:info |warn |error) /, "");

/**
 * The summary table a real `make restore` ends with, read from its stderr: the headline and one
 * row per service, keyed by column title (SERVICE, STRATEGY, RESULT, TIME, WHAT IT DID), in order.
 */
export function restoreSummary(stderr: string): { headline: string; rows: Record<string, string>[] } {
  const lines = stderr.split("\n").map(withoutLogPrefix);
  const starts = lines.map((line, index) => (line.startsWith("restore of run ") && lines[index + 1]?.startsWith("  SERVICE ") ? index : -1));
  const start = Math.max(...starts);
  if (start < 0) throw new Error(`no restore summary in:\n${stderr}`);
  const header = lines[start + 1];
  const titles = header.trim().split(/ {2,}/);
  const columns = titles.map((title) => header.indexOf(title));
  const rows: Record<string, string>[] = [];
  for (const line of lines.slice(start + 2)) {
    if (!line.startsWith("  ")) break;
    rows.push(Object.fromEntries(titles.map((title, column) => [title, line.slice(columns[column], columns[column + 1]).trim()])));
  }
  return { headline: lines[start], rows };
}

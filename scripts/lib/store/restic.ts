// restic, the repository engine's program: where it is, whether it is new enough, the project's
// repository (made with its password file on first use), and running it on the host (zx) or in a
// helper container (the static binary, the repository and the cache bind-mounted). The password
// only ever travels as a file path (RESTIC_PASSWORD_FILE): never in argv, logs or manifests.
import { createHash, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { $, type ProcessPromise } from "zx";
import type { Config } from "../config/schema.ts";
import type { Helper } from "../docker/helper.ts";
import { log, showsProgress, type Progress } from "../log.ts";
import { rcloneBinary, rcloneEnv } from "../remote/rclone-binary.ts";
import { hostnameProcessIsGone } from "../process-identity.ts";

/** The version `scripts/setup.sh` installs; 0.17 is the oldest with what composure uses (snapshot:subfolder restores). */
export const pinnedResticVersion = "0.18.1";
const minimumVersion = [0, 17, 0];

/** Where scripts/setup.sh caches the pinned build (by version). */
export function pinnedResticPath(env: NodeJS.ProcessEnv = process.env): string {
  const cache = env.XDG_CACHE_HOME || path.join(env.HOME || os.homedir(), ".cache");
  return path.join(cache, "composure", "tools", `restic-${pinnedResticVersion}`, "restic");
}

/** RESTIC= names the user's own binary; else the pinned build; else restic on the PATH. An absolute path: helpers mount it. */
export function resticBinary(env: NodeJS.ProcessEnv = process.env): string {
  if (env.RESTIC) return path.resolve(env.RESTIC);
  const pinned = pinnedResticPath(env);
  if (existsSync(pinned)) return pinned;
  const onPath = (env.PATH ?? "").split(":").map((dir) => path.join(dir, "restic")).find((candidate) => path.isAbsolute(candidate) && existsSync(candidate));
  return onPath ?? "restic";
}

export interface Repository {
  /** Host path of the repository, or restic's rclone:<remote>:<path> for the off-site copy. */
  path: string;
  /** The rclone config file an rclone: repository needs (remote.config_file, or prune_config_file to prune). */
  rcloneConfig?: string;
  /** Only rcloneConfig defines the remote: its RCLONE_CONFIG_<NAME>_* variables are left out (the prune credentials). */
  rcloneConfigOnly?: boolean;
  passwordFile: string;
  cacheDir: string;
  binary: string;
  /** restic's --compression (RESTIC_COMPRESSION) for the data it adds. */
  compression: "auto" | "off" | "max";
  /** Snapshots of this project carry it as their host: prune forgets only its own. */
  project: string;
}

export function repositoryOf(config: Config, project: string, env: NodeJS.ProcessEnv = process.env): Repository {
  return {
    path: config.repository.path ?? path.join(config.destination, project, ".repository"),
    passwordFile: config.repository.password_file ?? path.join(config.destination, ".repository-password"),
    cacheDir: path.join(config.destination, ".restic-cache"),
    binary: resticBinary(env),
    compression: config.repository.compression,
    project,
  };
}

/** The repository ready for use: restic new enough, the password file and the repository made when missing. */
export async function openRepository(repository: Repository): Promise<Repository> {
  await checkVersion(repository.binary);
  await mkdir(repository.cacheDir, { recursive: true, mode: 0o700 });
  if (!existsSync(repository.passwordFile)) {
    await mkdir(path.dirname(repository.passwordFile), { recursive: true, mode: 0o700 });
    await writeFile(repository.passwordFile, `${randomBytes(32).toString("base64url")}\n`, { mode: 0o600, flag: "wx" });
    log.warn(`made the repository password file ${repository.passwordFile}: keep a copy of it somewhere else (a password manager or vault). Without it no backup in the repository can be restored, and composure cannot make it again`);
  }
  if (!existsSync(path.join(repository.path, "config"))) {
    await mkdir(path.dirname(repository.path), { recursive: true, mode: 0o700 });
    await restic(repository, ["init"]);
    log.info(`made the restic repository ${repository.path}`);
  } else {
    await checkPassword(repository);
    await clearStaleLocks(repository);
  }
  return repository;
}

/**
 * Fails when the password file does not open the repository, before any service is stopped.
 * Opening costs restic's key derivation (about half a second), so a password file that opened
 * this repository before (its sha256 noted in the cache folder) is not tried again.
 */
export async function checkPassword(repository: Repository): Promise<void> {
  const digest = createHash("sha256").update(repository.path).update("\0").update(await readFile(repository.passwordFile)).digest("hex");
  const note = path.join(repository.cacheDir, "composure-opened");
  const known = existsSync(note) ? (await readFile(note, "utf8")).split("\n") : [];
  if (known.includes(digest)) return;
  await restic(repository, ["cat", "config", "--no-lock"]);
  await mkdir(repository.cacheDir, { recursive: true, mode: 0o700 });
  await writeFile(note, [...known.slice(-20), digest].join("\n"), { mode: 0o600 });
}

/**
 * Removes the locks of composure runs that are gone (killed with SIGKILL, say): those taken in a
 * helper container name the composure process in their host name; those taken on this host
 * name restic's own pid, and `restic unlock` removes them when that process is gone.
 */
export async function clearStaleLocks(repository: Repository): Promise<void> {
  const local = !repository.path.startsWith("rclone:");
  if (local && (await readdir(path.join(repository.path, "locks")).catch(() => [])).length === 0) return; // nothing to open the repository for
  const ids = (await restic(repository, ["list", "locks", "--no-lock"])).split("\n").filter(Boolean);
  if (ids.length === 0) return;
  for (const id of ids) {
    const lock = JSON.parse(await restic(repository, ["cat", "lock", id, "--no-lock"]).catch(() => "{}")) as { hostname?: string; pid?: number };
    if (!lock.hostname || !hostnameProcessIsGone(lock.hostname) || !local) continue;
    await rm(path.join(repository.path, "locks", id), { force: true });
    log.info(`removed the repository lock of a composure run that is gone (${lock.hostname}, restic pid ${lock.pid})`);
  }
  await restic(repository, ["unlock"]);
}

export async function checkVersion(binary: string): Promise<void> {
  const found = await $({ quiet: true, nothrow: true })`${binary} version`.catch((error: Error) => ({ exitCode: -1, stdout: "", stderr: error.message }));
  const version = /restic (\d+)\.(\d+)\.(\d+)/.exec(found.stdout);
  const install = `run "sudo bash scripts/setup.sh" (it builds restic ${pinnedResticVersion}, cached by version), or point RESTIC= at a restic ${pinnedResticVersion} binary`;
  if (found.exitCode !== 0 || !version) throw new Error(`the repository engine needs restic, and ${binary} does not run (${found.stderr.trim() || `exit ${found.exitCode}`}): ${install}`);
  const numbers = version.slice(1).map(Number);
  const older = numbers.findIndex((part, index) => part !== minimumVersion[index]);
  if (older !== -1 && numbers[older] < minimumVersion[older]) throw new Error(`${binary} is restic ${numbers.join(".")}; the repository engine needs ${minimumVersion.join(".")} or newer: ${install}`);
}

/** `from`: the source repository of `restic copy` and `init --copy-chunker-params` (a local path). */
const hostEnv = (repository: Repository, from?: Repository) => ({
  ...(repository.path.startsWith("rclone:") ? rcloneEnv(repository.path.slice("rclone:".length), repository.rcloneConfig, repository.rcloneConfigOnly) : process.env),
  RESTIC_REPOSITORY: repository.path,
  RESTIC_PASSWORD_FILE: repository.passwordFile,
  RESTIC_CACHE_DIR: repository.cacheDir,
  RESTIC_PROGRESS_FPS: "0.2",
  RESTIC_COMPRESSION: repository.compression,
  ...(from ? { RESTIC_FROM_REPOSITORY: from.path, RESTIC_FROM_PASSWORD_FILE: from.passwordFile } : {}),
});

/** restic on the host; resolves to its stdout. `input`: what it reads on stdin; `from`: see hostEnv. */
export function resticProcess(repository: Repository, args: string[], input?: NodeJS.ReadableStream, from?: Repository): ProcessPromise {
  // The off-site copy goes through the same rclone the remote uses (an S3 remote needs the pinned one).
  const program = repository.path.startsWith("rclone:") ? ["-o", `rclone.program=${rcloneBinary()}`] : [];
  const process = $({ quiet: true, env: hostEnv(repository, from), ...(input ? {} : { stdio: ["ignore", "pipe", "pipe"] }) })`${repository.binary} ${program} ${args}`;
  if (input) input.pipe(process.stdin);
  return process;
}

export async function restic(repository: Repository, args: string[], input?: NodeJS.ReadableStream, from?: Repository): Promise<string> {
  const result = await resticProcess(repository, args, input, from).nothrow();
  if (result.exitCode !== 0) throw resticError(repository, args[0], result.exitCode ?? -1, result.stderr);
  return result.stdout;
}

// In a helper container: the binary, the repository, the cache and the password file at fixed paths.
const inHelper = { binary: "/composure/restic", repository: "/composure/repo", cache: "/composure/cache", password: "/composure/password" };

/** What every helper needs to run restic against the repository. */
export function helperBinds(repository: Repository): string[] {
  return [`${repository.binary}:${inHelper.binary}:ro`, `${repository.path}:${inHelper.repository}`, `${repository.cacheDir}:${inHelper.cache}`, `${repository.passwordFile}:${inHelper.password}:ro`];
}

const helperEnv = (repository: Repository) => [`RESTIC_REPOSITORY=${inHelper.repository}`, `RESTIC_PASSWORD_FILE=${inHelper.password}`, `RESTIC_CACHE_DIR=${inHelper.cache}`, `RESTIC_COMPRESSION=${repository.compression}`];

/** restic in a helper that has helperBinds(repository); resolves to its stdout. */
export async function resticInHelper(repository: Repository, helper: Helper, args: string[]): Promise<string> {
  const result = await helper.run([inHelper.binary, ...args], { env: helperEnv(repository) });
  if (result.exitCode !== 0) throw resticError(repository, args[0], result.exitCode, result.stderr);
  return result.stdout;
}

/**
 * `restic backup|restore --json` in a helper, like resticInHelper; on a terminal its status
 * messages (5 a second) feed `progress` with the bytes done of the total, and are left out of
 * the stdout it resolves to. Elsewhere it runs --quiet.
 */
export async function resticInHelperWithProgress(repository: Repository, helper: Helper, args: string[], progress: Progress): Promise<string> {
  if (!showsProgress) return resticInHelper(repository, helper, [args[0], "--quiet", ...args.slice(1)]);
  let stdout = "";
  let done = 0;
  let partial = "";
  progress.sample(() => done);
  const take = (line: string) => {
    if (!line.includes('"message_type":"status"')) return void (stdout += `${line}\n`);
    const status = JSON.parse(line) as { total_bytes?: number; bytes_done?: number; bytes_restored?: number };
    if (status.total_bytes) progress.expect(status.total_bytes);
    done = status.bytes_done ?? status.bytes_restored ?? done;
  };
  const lines = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      const text = partial + chunk.toString("utf8");
      const complete = text.split("\n");
      partial = complete.pop()!;
      complete.forEach(take);
      callback();
    },
  });
  const result = await helper.stream([inHelper.binary, ...args], lines, { env: [...helperEnv(repository), "RESTIC_PROGRESS_FPS=5"] });
  if (partial) take(partial);
  if (result.exitCode !== 0) throw resticError(repository, args[0], result.exitCode, result.stderr);
  return stdout;
}

/** restic's exit codes, told as what to do. */
export function resticError(repository: Repository, command: string, exitCode: number, stderr: string): Error {
  const detail = stderr.trim().split("\n").slice(-3).join("; ");
  switch (exitCode) {
    case 12:
      return new Error(`the repository ${repository.path} does not open with the password in ${repository.passwordFile}: put back the password file you kept a copy of (restic ${command}: wrong password)`);
    case 10:
      return new Error(`there is no restic repository at ${repository.path} (restic ${command}): restore it from the off-site copy (make restore FROM=remote), or check repository.path in composure.yml`);
    case 11:
      return new Error(`the repository ${repository.path} is locked by another process (restic ${command}): ${detail}. A lock of a process that is gone is removed by the next composure command`);
    case 3:
      return new Error(`restic ${command} could not read every file of the source: ${detail}`);
    default:
      return new Error(`restic ${command} failed (exit ${exitCode}): ${detail || "no message"}`);
  }
}

/** The last JSON message of restic's --json output of the given type. */
export function lastMessage<T>(stdout: string, type: string): T {
  const lines = stdout.split("\n").filter((line) => line.startsWith("{"));
  for (const line of lines.reverse()) {
    const message = JSON.parse(line) as { message_type?: string };
    if (message.message_type === type) return message as T;
  }
  throw new Error(`restic printed no ${type} message: ${stdout.slice(-300)}`);
}

/**
 * The off-site copy of the project's repository, as restic reaches it through rclone for `make
 * prune FROM=remote`: with the prune credentials (remote.prune_config_file) when they are set.
 */
export function remoteRepositoryOf(config: Config, project: string): Repository {
  const { target, config_file, prune_config_file } = config.remote!;
  // A local path is rclone's local backend: rclone:/path works; a remote name keeps its colon.
  const remotePath = `rclone:${target.replace(/\/+$/, "")}/${project}/.repository`;
  return { ...repositoryOf(config, project), path: remotePath, rcloneConfig: prune_config_file ?? config_file, rcloneConfigOnly: Boolean(prune_config_file) };
}

// Which rclone composure runs, and whether it can serve the remote: RCLONE= (the operator's
// binary), else the pinned build scripts/setup.sh caches by version, else rclone on the PATH.
// S3 remotes need a newer rclone than many distributions ship, so their version is checked once
// per command (the backend type comes from RCLONE_CONFIG_<NAME>_TYPE or `rclone config dump`),
// or not at all when the same binary (path, size, mtime) passed before.
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { $ } from "zx";
import { RemoteError } from "../errors.ts";

/** The version `scripts/setup.sh` builds (it reads this line with sed). */
export const pinnedRcloneVersion = "1.76.0";
/** The oldest rclone composure lets talk to S3. */
export const minimumS3Version = [1, 65, 0];

/** Where scripts/setup.sh caches the pinned build (by version). */
export function pinnedRclonePath(env: NodeJS.ProcessEnv = process.env): string {
  const cache = env.XDG_CACHE_HOME || path.join(env.HOME || os.homedir(), ".cache");
  return path.join(cache, "composure", "tools", `rclone-${pinnedRcloneVersion}`, "rclone");
}

/** RCLONE= names the operator's own binary; else the pinned build; else rclone on the PATH. */
export function rcloneBinary(env: NodeJS.ProcessEnv = process.env): string {
  if (env.RCLONE) return path.resolve(env.RCLONE);
  const pinned = pinnedRclonePath(env);
  return existsSync(pinned) ? pinned : "rclone";
}

/** The remote name of an rclone target ("offsite" of "offsite:bucket/x"); undefined for a local path. */
export function remoteName(target: string): string | undefined {
  const match = /^([^/:\\][^:/\\]*):/.exec(target);
  if (!match || /^[A-Za-z]$/.test(match[1])) return undefined; // a Windows drive letter is a local path
  return match[1];
}

/** rclone's environment variable for one option of a remote (rclone upper-cases and turns "-" into "_"). */
const configVariable = (name: string, option: string) => `RCLONE_CONFIG_${name.toUpperCase().replace(/-/g, "_")}_${option}`;

/**
 * The environment rclone runs in for `target`: RCLONE_CONFIG names `configFile`. With `fileOnly`
 * the remote's own RCLONE_CONFIG_<NAME>_* variables are left out, because rclone lets them override
 * the file: the credentials used are then the file's alone (the prune credentials, say).
 */
export function rcloneEnv(target: string, configFile: string | undefined, fileOnly = false, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const name = remoteName(target);
  const prefix = name && fileOnly ? configVariable(name, "") : undefined;
  const kept = Object.entries(base).filter(([key]) => !prefix || !key.toUpperCase().startsWith(prefix));
  return { ...Object.fromEntries(kept), ...(configFile ? { RCLONE_CONFIG: configFile } : {}) };
}

/**
 * The backend type of the target's remote ("s3", "webdav", "local" ...). The environment first
 * (no process); the config file through `rclone config dump` only when the environment is silent.
 */
export async function backendType(target: string, binary: string, env: NodeJS.ProcessEnv): Promise<string> {
  const connection = /^:([a-z0-9]+)[,:]/.exec(target); // ":s3,provider=...:bucket" connection strings
  if (connection) return connection[1];
  const name = remoteName(target);
  if (!name) return "local";
  const fromEnv = env[configVariable(name, "TYPE")];
  if (fromEnv) return fromEnv.toLowerCase();
  const dump = await $({ quiet: true, nothrow: true, env })`${binary} config dump`;
  if (dump.exitCode !== 0) return "unknown"; // rclone itself reports the trouble on first use
  const remotes = JSON.parse(dump.stdout || "{}") as Record<string, { type?: string }>;
  return remotes[name]?.type?.toLowerCase() ?? "unknown";
}

/** rclone's version as numbers, e.g. [1, 60, 1] for "rclone v1.60.1-DEV". */
export async function rcloneVersion(binary: string, env: NodeJS.ProcessEnv): Promise<number[]> {
  const found = await $({ quiet: true, nothrow: true, env })`${binary} version`.catch((error: Error) => ({ exitCode: -1, stdout: "", stderr: error.message }));
  const version = /rclone v(\d+)\.(\d+)\.(\d+)/.exec(found.stdout);
  if (found.exitCode !== 0 || !version) {
    throw new RemoteError(`the remote needs rclone, and ${binary} does not run (${found.stderr.trim() || `exit ${found.exitCode}`}): ${installAdvice}`);
  }
  return version.slice(1).map(Number);
}

const installAdvice = `run "make setup" (it builds rclone ${pinnedRcloneVersion} from the Go module proxy, cached by version), or point RCLONE= at an rclone ${minimumS3Version.join(".")} or newer binary`;

const older = (found: number[], wanted: number[]) => {
  const index = found.findIndex((part, i) => part !== wanted[i]);
  return index !== -1 && found[index] < wanted[index];
};

/**
 * Where binaries that passed the check are noted (path, size, mtime): a command that finds its
 * binary there unchanged starts no `rclone version` (about 0.1 s of every S3 command otherwise).
 */
const checkedNote = (env: NodeJS.ProcessEnv) => path.join(env.XDG_CACHE_HOME || path.join(env.HOME || os.homedir(), ".cache"), "composure", "rclone-s3-checked");

function identity(binary: string): string | undefined {
  if (!path.isAbsolute(binary)) return undefined; // rclone on the PATH: looked at every time
  try {
    const stat = statSync(binary);
    return `${binary}\t${stat.size}\t${stat.mtimeMs}`;
  } catch {
    return undefined;
  }
}

/** Fails, saying what to do, when an S3 remote would be reached with an rclone older than 1.65. */
export async function checkS3Version(target: string, binary: string, env: NodeJS.ProcessEnv): Promise<void> {
  const known = identity(binary);
  const note = checkedNote(env);
  const noted = existsSync(note) ? readFileSync(note, "utf8").split("\n") : [];
  if (known && noted.includes(known)) return;
  const found = await rcloneVersion(binary, env);
  if (!older(found, minimumS3Version)) {
    if (known) {
      mkdirSync(path.dirname(note), { recursive: true });
      writeFileSync(note, [...noted.filter(Boolean).slice(-20), known].join("\n") + "\n");
    }
    return;
  }
  throw new RemoteError(
    `${binary} is rclone ${found.join(".")}, and the S3 remote ${target} needs rclone ${minimumS3Version.join(".")} or newer ` +
      `(older rclone's S3 client fails every call on hosts whose environment sets AWS_CA_BUNDLE, as many do): ${installAdvice}`,
  );
}

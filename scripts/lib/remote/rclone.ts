// The rclone implementation of Remote. Credentials stay in rclone's config file or RCLONE_*
// environment variables, never in argv. rclone's exit code 5 means "temporary, retrying may
// help": those (and network errors met while opening the remote) are retried with backoff;
// every other failure is permanent and reported at once. Before its first call it settles which
// rclone runs and the remote's backend type (S3: the version is checked, chunk_size applies).
// Uploads write in place and never rename or delete, so an append-only remote (credentials that
// may add but not delete, rename or overwrite away) takes them; a refused removal says so.
import { statSync } from "node:fs";
import { $ } from "zx";
import { RemoteError } from "../errors.ts";
import { log, showsProgress } from "../log.ts";
import { run, type ProgramError } from "../shell.ts";
import { backendType, checkS3Version, rcloneBinary, rcloneEnv } from "./rclone-binary.ts";
import { watchStats, type StatsWatch } from "./rclone-stats.ts";
import type { Remote, RemoteEntry } from "./types.ts";

export interface RcloneSettings {
  target: string;
  configFile?: string;
  /**
   * The credentials are remote.prune_config_file's (make prune FROM=remote): the file alone defines
   * the remote (its RCLONE_CONFIG_<NAME>_* variables are left out), and a refused removal says so.
   */
  pruneCredentials?: boolean;
  bwlimit?: string;
  transfers?: number;
  /** S3 multipart part size (rclone --s3-chunk-size), applied only when the remote is S3. */
  chunkSize?: string;
  /** Attempts for temporary failures (exit code 5). */
  attempts?: number;
  backoffSeconds?: number;
}

const exitMeanings: Record<number, string> = {
  1: "syntax or usage error",
  2: "error not otherwise categorised",
  3: "directory not found",
  4: "file not found",
  5: "temporary error",
  6: "less serious error",
  7: "fatal error (e.g. account suspended, wrong credentials)",
  8: "transfer limit exceeded",
  9: "no files transferred",
};

/** The server refused who we are (S3, WebDAV, ...): permanent, and the fix is the remote's credentials. */
const refusedPattern = /InvalidAccessKeyId|SignatureDoesNotMatch|AccessDenied|api error Forbidden|401 Unauthorized|403 Forbidden|permission denied/i;

/** Whether a failure is the remote refusing what the credentials asked (a delete, on an append-only remote). */
export const isRefusal = (message: string): boolean => refusedPattern.test(message);

/**
 * What a refused removal means: the credentials may add to the remote but not delete from it.
 * Backups never need to delete; pruning the remote takes the prune credentials.
 */
export function refusedRemovalAdvice(description: string, pruneConfigFile: string | undefined): string {
  if (pruneConfigFile) return `${description} refuses deletes to the prune credentials of remote.prune_config_file (${pruneConfigFile}): give them the right to delete there`;
  return `${description} is append-only for these credentials (it refuses deletes). make backup and make sync never delete there; ` +
    "pruning the remote needs credentials that may delete: name their rclone config file in remote.prune_config_file and run make prune FROM=remote";
}

/** Network trouble rclone reports as a plain failure when it happens while opening the remote. */
const transientPattern = /connection refused|connection reset|i\/o timeout|TLS handshake timeout|broken pipe|unexpected EOF|50[234] /i;

/** One check per binary and target for the whole command (every RcloneRemote of a process shares it). */
const prepared = new Map<string, Promise<string>>();

export class RcloneRemote implements Remote {
  readonly description: string;
  private readonly binary: string;
  private readonly env: NodeJS.ProcessEnv;

  constructor(private readonly settings: RcloneSettings) {
    this.description = `rclone ${settings.target}`;
    this.binary = rcloneBinary();
    this.env = rcloneEnv(settings.target, settings.configFile, settings.pruneCredentials);
  }

  /** The remote's backend type, found once; an S3 remote also has its rclone version checked. */
  private backend(): Promise<string> {
    const key = `${this.binary}\0${this.settings.configFile ?? ""}\0${this.settings.target}`;
    if (!prepared.has(key)) {
      prepared.set(key, (async () => {
        const type = await backendType(this.settings.target, this.binary, this.env);
        if (type === "s3") await checkS3Version(this.settings.target, this.binary, this.env);
        return type;
      })());
    }
    return prepared.get(key)!;
  }

  private join(remotePath: string): string {
    const root = this.settings.target.replace(/\/+$/, "");
    return remotePath ? `${root}/${remotePath}` : root;
  }

  /**
   * Runs rclone, retrying temporary failures. `transfer`: a copy, shown on the progress line as
   * `what`; `removing`: the command deletes, and a refusal is explained as an append-only remote.
   */
  private async rclone(args: string[], what: string, kind: { transfer?: boolean; removing?: boolean } = {}): Promise<string> {
    const stats = kind.transfer && showsProgress ? watchStats(what) : undefined;
    try {
      return await this.attempts(args, what, stats, kind.removing ?? false);
    } finally {
      stats?.stop();
    }
  }

  private async attempts(args: string[], what: string, stats: StatsWatch | undefined, removing: boolean): Promise<string> {
    const attempts = this.settings.attempts ?? 3;
    const backendFlags = (await this.backend()) === "s3" && this.settings.chunkSize ? ["--s3-chunk-size", this.settings.chunkSize] : [];
    for (let attempt = 1; ; attempt++) {
      try {
        return await run(this.binary, [...args, ...backendFlags, "--retries", "1", "--low-level-retries", "3", ...(stats?.flags() ?? [])], this.env);
      } catch (failure) {
        const code = (failure as ProgramError).exitCode ?? -1;
        const temporary = code === 5 || transientPattern.test((failure as Error).message);
        const error = temporary ? (failure as Error) : await this.explained(failure as Error);
        const refused = !temporary && isRefusal(error.message);
        if (refused && removing) {
          const advice = refusedRemovalAdvice(this.description, this.settings.pruneCredentials ? this.settings.configFile : undefined);
          throw new RemoteError(`${what} was refused: ${advice} (rclone: ${lastLines(error.message)})`);
        }
        const meaning = refused
          ? "access denied: check the remote's credentials and what its policy allows"
          : temporary && code !== 5 ? `temporary error: ${exitMeanings[code] ?? `exit code ${code}`}` : (exitMeanings[code] ?? `exit code ${code}`);
        if (temporary && attempt < attempts) {
          const delay = (this.settings.backoffSeconds ?? 2) * 2 ** (attempt - 1);
          log.warn(`${what} on ${this.description}: ${meaning}, retrying in ${delay} s (attempt ${attempt + 1} of ${attempts})`);
          await new Promise((resolve) => setTimeout(resolve, delay * 1000));
          continue;
        }
        throw new RemoteError(`${what} on ${this.description} failed (${meaning}): ${lastLines(error.message)}`);
      }
    }
  }

  /**
   * rclone's S3 backend takes the 403 of its first HEAD (a wrong key, say) for "is a file not a
   * directory"; a listing of the target's root then tells the real reason. Only on that failure.
   */
  private async explained(error: Error): Promise<Error> {
    if (!/is a file not a directory/.test(error.message) || (await this.backend()) !== "s3") return error;
    const probe = await $({ quiet: true, nothrow: true, env: this.env })`${this.binary} lsjson --max-depth 1 --retries 1 --low-level-retries 1 ${this.join("")}`;
    return probe.exitCode !== 0 && refusedPattern.test(probe.stderr) ? new Error(probe.stderr.trim()) : error;
  }

  /**
   * --inplace: rclone would otherwise write a .partial file and rename it, which needs rename (and,
   * after a failure, delete) rights an append-only remote refuses. A run is complete on the remote
   * only once its manifest is there, and the sizes are checked, so a cut-short file is harmless.
   */
  private transferFlags(upload = false): string[] {
    return [
      "--transfers", String(this.settings.transfers ?? 4),
      ...(upload ? ["--inplace"] : []),
      ...(this.settings.bwlimit ? ["--bwlimit", this.settings.bwlimit] : []),
    ];
  }

  async upload(localPath: string, remotePath: string, options: { exclude?: string[] } = {}): Promise<void> {
    const excludes = (options.exclude ?? []).flatMap((pattern) => ["--exclude", pattern]);
    const verb = statSync(localPath).isDirectory() ? "copy" : "copyto";
    await this.rclone([verb, localPath, this.join(remotePath), ...excludes, ...this.transferFlags(true)], `upload of ${remotePath}`, { transfer: true });
  }

  async downloadFile(remotePath: string, localPath: string): Promise<void> {
    await this.rclone(["copyto", this.join(remotePath), localPath, ...this.transferFlags()], `download of ${remotePath}`, { transfer: true });
  }

  async downloadDir(remotePath: string, localPath: string, options: { exclude?: string[] } = {}): Promise<void> {
    const excludes = (options.exclude ?? []).flatMap((pattern) => ["--exclude", pattern]);
    await this.rclone(["copy", this.join(remotePath), localPath, ...excludes, ...this.transferFlags()], `download of ${remotePath}`, { transfer: true });
  }

  async list(remotePath: string, options: { hashes?: boolean } = {}): Promise<RemoteEntry[]> {
    let output: string;
    // sha256 only: rclone computes every hash type it knows otherwise (a local remote reads each
    // file once per type), and on S3, which keeps no sha256, it would ask for each large object's MD5.
    const hashes = options.hashes === false ? [] : ["--hash", "--hash-type", "sha256"];
    try {
      output = await this.rclone(["lsjson", "-R", "--files-only", ...hashes, this.join(remotePath)], `listing of ${remotePath || "/"}`);
    } catch (error) {
      if (/directory not found/.test((error as Error).message)) return [];
      throw error;
    }
    const items = JSON.parse(output || "[]") as { Path: string; Size: number; Hashes?: Record<string, string> }[];
    return items.map((item) => ({ path: item.Path, bytes: item.Size, sha256: item.Hashes?.sha256?.toLowerCase() }));
  }

  async hash(remotePath: string): Promise<string> {
    const output = await this.rclone(["hashsum", "sha256", "--download", this.join(remotePath)], `hash of ${remotePath}`);
    return output.trim().split(/\s+/)[0].toLowerCase();
  }

  async removeDir(remotePath: string): Promise<void> {
    if ((await this.list(remotePath, { hashes: false })).length === 0) return;
    await this.rclone(["purge", this.join(remotePath)], `removal of ${remotePath}`, { removing: true });
  }

  async checkRemoval(remotePath: string): Promise<void> {
    await this.rclone(["touch", "--inplace", this.join(remotePath)], `the removal check at ${remotePath}`);
    await this.rclone(["deletefile", this.join(remotePath)], `removal of ${remotePath}`, { removing: true });
  }
}

/** The end of rclone's output, where its summary is, on one line; the permission error when it is further up. */
function lastLines(message: string): string {
  const lines = message.split("\n");
  const tail = lines.slice(-3);
  const refusal = lines.find((line) => isRefusal(line));
  return [...(refusal && !tail.includes(refusal) ? [refusal] : []), ...tail].join(" ");
}

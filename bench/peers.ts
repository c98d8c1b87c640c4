// The tools operators use instead, on the same volume, in the same run. They run on the host
// against the volume's Mountpoint (where composure reads through a helper container): restic
// from Debian's package, offen/docker-volume-backup built with `go install` from its module.
// A peer that cannot be installed or run is reported with the reason, never left out silently.
import { existsSync, mkdirSync, readdirSync, statSync } from "node:fs";
import path from "node:path";
import { dropCaches, duBytes, lastLines, measure, removeDir, round, run, say, versionOf } from "./common.ts";

export interface PeerFigures {
  tool: string;
  /** The version measured (set only when the tool ran). */
  version?: string;
  /** The version that was tried when it could not be installed. */
  attempted_version?: string;
  /** Set when the peer was not measured (or only partly): why. */
  not_measured?: string;
  backup_s?: number;
  backup_peak_rss_mb?: number;
  backup_cpu_s?: number;
  stored_bytes?: number;
  restore_s?: number;
  restore_identical_bytes?: boolean;
  note?: string;
}

const firstLine = (error: unknown) => lastLines((error as Error).message, 2);

/** restic, Debian's package (`apt-get install -y restic`), installed when missing and allowed. */
async function ensureRestic(): Promise<string | undefined> {
  if (await versionOf("restic", ["version"])) return undefined;
  if (["0", "false", "no"].includes((process.env.BENCH_INSTALL ?? "").toLowerCase())) return "restic is not installed and BENCH_INSTALL=0 forbids installing it (apt-get install -y restic)";
  if (process.getuid?.() !== 0) return "restic is not installed and this user may not run apt-get (as root: apt-get install -y restic)";
  say("peers: installing restic from Debian's packages (apt-get install -y restic)");
  const installed = await run("apt-get", ["install", "-y", "--no-install-recommends", "restic"], { allowFailure: true, timeoutMs: 600_000, env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } });
  if (installed.code !== 0) return `apt-get install -y restic failed (exit ${installed.code}): ${lastLines(installed.stderr || installed.stdout, 2)}`;
  return (await versionOf("restic", ["version"])) ? undefined : "restic is still missing after apt-get install";
}

/** restic's first backup of the volume into a fresh repository, its size, and a full restore. */
export async function measureRestic(mountpoint: string, sourceBytes: number, work: string, timeoutMs: number): Promise<PeerFigures> {
  const figures: PeerFigures = { tool: "restic" };
  const missing = await ensureRestic();
  if (missing) return { ...figures, not_measured: missing };
  figures.version = await versionOf("restic", ["version"]);
  const repo = path.join(work, "restic-repo");
  const cache = path.join(work, "restic-cache");
  const target = path.join(work, "restic-restore");
  const env = { ...process.env, RESTIC_PASSWORD: "composure-bench", RESTIC_REPOSITORY: repo, RESTIC_CACHE_DIR: cache };
  try {
    // Repository format 2: compressed (zstd, restic's default "auto" level), as restic ships it today.
    await run("restic", ["init", "--repository-version", "2"], { env, timeoutMs: 120_000 });
    await dropCaches();
    const backup = await measure("restic", ["backup", "--host", "composure-bench", "."], { env, cwd: mountpoint, timeoutMs, statsFile: path.join(work, "restic-backup-time.txt") });
    figures.backup_s = round(backup.seconds);
    figures.backup_peak_rss_mb = backup.peakRssMb;
    figures.backup_cpu_s = backup.cpuSeconds;
    figures.stored_bytes = await duBytes(repo);
    say(`peers: restic first backup ${figures.backup_s} s, ${round(figures.stored_bytes / 1024 ** 2, 1)} MB`);
    mkdirSync(target);
    const restore = await run("restic", ["restore", "latest", "--target", target], { env, timeoutMs });
    figures.restore_s = round(restore.seconds);
    const restored = await duBytes(target);
    figures.restore_identical_bytes = Math.abs(restored - sourceBytes) < 64 * 1024 + sourceBytes * 0.001;
    figures.note = "restores into a host folder (composure restores into the volume, service stopped)";
    say(`peers: restic restore ${figures.restore_s} s`);
  } catch (error) {
    figures.not_measured = `restic failed: ${firstLine(error)}`;
  } finally {
    removeDir(target);
    removeDir(repo);
    removeDir(cache);
  }
  return figures;
}

/** Where offen's binary comes from: BENCH_OFFEN_BIN, else `go install` of a released version. */
async function installOffen(work: string): Promise<{ binary?: string; version: string; reason?: string }> {
  const version = process.env.BENCH_OFFEN_VERSION || "v2.43.0";
  if (process.env.BENCH_OFFEN_BIN) {
    return existsSync(process.env.BENCH_OFFEN_BIN) ? { binary: process.env.BENCH_OFFEN_BIN, version: `${version} (BENCH_OFFEN_BIN)` } : { version, reason: `BENCH_OFFEN_BIN=${process.env.BENCH_OFFEN_BIN} does not exist` };
  }
  if (!(await versionOf("go", ["version"]))) return { version, reason: "the Go toolchain is not installed (go install needs it)" };
  const bin = path.join(work, "offen-bin");
  const module = `github.com/offen/docker-volume-backup/cmd/backup@${version}`;
  say(`peers: go install ${module}`);
  const built = await run("go", ["install", module], { allowFailure: true, timeoutMs: 900_000, env: { ...process.env, GOBIN: bin, GOFLAGS: "-mod=mod", GOTOOLCHAIN: "local" } }).catch((error: Error) => ({ code: 1, stdout: "", stderr: error.message }));
  if (built.code !== 0) {
    return { version, reason: `go install ${module} failed: ${goFailure(built.stderr || built.stdout)}` };
  }
  return { binary: path.join(bin, "backup"), version };
}

/** The gist of a failed `go install`: the module proxy's answer when there is one, else the first lines. */
export function goFailure(output: string): string {
  const text = output.split("\n").filter((line) => !line.startsWith("go: downloading")).join(" ").replace(/\s+/g, " ").trim();
  const proxy = /reading https?:\/\/\S*: (\d{3}[^:]*?)\s*server response: (.*?)(?= go: |$)/.exec(text);
  if (proxy) return `the Go module proxy answered ${proxy[1].trim()}: ${proxy[2].trim()}`;
  const invalid = /invalid version: (.*?)(?= go: |$)/.exec(text);
  if (invalid) return `invalid version: ${invalid[1].trim()}`.slice(0, 300);
  return text.slice(0, 300);
}

/**
 * offen/docker-volume-backup, with gzip then zstd. It is built to run as a container with the
 * volumes under /backup and the Docker socket; here its binary runs on the host with
 * BACKUP_SOURCES at the volume's Mountpoint and BACKUP_ARCHIVE in a scratch folder.
 */
export async function measureOffen(mountpoint: string, work: string, timeoutMs: number): Promise<PeerFigures[]> {
  const installed = await installOffen(work);
  const tools = ["gz", "zst"].map((compression) => ({ tool: `offen/docker-volume-backup (${compression === "gz" ? "gzip" : "zstd"})`, compression }));
  if (!installed.binary) return tools.map(({ tool }) => ({ tool, attempted_version: installed.version, not_measured: installed.reason }));
  const results: PeerFigures[] = [];
  for (const { tool, compression } of tools) {
    const archive = path.join(work, `offen-${compression}`);
    const scratch = path.join(work, `offen-${compression}-tmp`);
    mkdirSync(archive);
    mkdirSync(scratch);
    const env = {
      ...process.env,
      BACKUP_SOURCES: mountpoint,
      BACKUP_ARCHIVE: archive,
      BACKUP_COMPRESSION: compression,
      BACKUP_FILENAME: `composure-bench.tar.${compression}`,
      BACKUP_STOP_DURING_BACKUP_LABEL: "composure-bench-none",
      TMPDIR: scratch,
    };
    try {
      await dropCaches();
      const backup = await measure(installed.binary, [], { env, cwd: work, timeoutMs, statsFile: path.join(work, `offen-${compression}-time.txt`) });
      const files = readdirSync(archive);
      if (!files.length) throw new Error(`it wrote no archive into BACKUP_ARCHIVE: ${lastLines(backup.stdout + backup.stderr, 3)}`);
      const stored = files.reduce((sum, name) => sum + statSync(path.join(archive, name)).size, 0);
      results.push({ tool, version: installed.version, backup_s: round(backup.seconds), backup_peak_rss_mb: backup.peakRssMb, backup_cpu_s: backup.cpuSeconds, stored_bytes: stored, note: "binary run on the host against the Mountpoint; restore is untar by hand (not measured)" });
      say(`peers: ${tool} ${round(backup.seconds)} s, ${round(stored / 1024 ** 2, 1)} MB`);
    } catch (error) {
      results.push({ tool, attempted_version: installed.version, not_measured: `the built binary failed on the host: ${firstLine(error)}` });
    } finally {
      removeDir(archive);
      removeDir(scratch);
    }
  }
  return results;
}

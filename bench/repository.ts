// The repository engine (`storage: repository`: each source a restic snapshot of the project's
// repository) on the mixed volume, stop mode: its first backup against the archive engine's, an
// unchanged second backup (what restic's parent snapshot saves), a third after 1% of the files
// were rewritten, a restore of that run into the emptied volume; then restic alone, the same
// binary, on the volume's Mountpoint, as the limit of an unchanged second backup.
import { readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { lastMessage, pinnedResticVersion, resticBinary } from "../scripts/lib/store/restic.ts";
import { dropCaches, duBytes, mb, measure, removeDir, round, run, say, versionOf } from "./common.ts";
import type { BackupRun, Composure } from "./composure.ts";
import { generateMixed, pseudoRandom } from "./datasets.ts";
import { projectName, type BenchStack } from "./stack.ts";
import { rawRead, treeDigest } from "./volume.ts";

export interface RepositoryFigures {
  restic_version: string;
  bytes: number;
  files: number;
  raw_read_s: number;
  archive_first_s: number;
  archive_first_bytes: number;
  first_s: number;
  /** What the first backup added to the repository (the manifest's addedBytes). */
  first_bytes: number;
  first_downtime_s: number;
  second_s: number;
  second_added_bytes: number;
  second_downtime_s: number;
  changed_files: number;
  changed_bytes: number;
  third_s: number;
  third_added_bytes: number;
  restore_s: number;
  restore_identical: boolean;
  restic_first_s: number;
  restic_first_added_bytes: number;
  restic_first_peak_rss_mb?: number;
  restic_second_s: number;
  restic_second_added_bytes: number;
  /** The largest of the three repository backups: composure's node process, and restic in its helper. */
  composure_peak_rss_mb: number;
  restic_peak_rss_mb?: number;
  /** Their sum (they run at the same time); not measured when restic's processes could not be seen. */
  peak_rss_mb?: number;
}

/** Why the section cannot run: no restic that runs (the pinned build, RESTIC=, or one on the PATH). */
export async function resticMissing(): Promise<string | undefined> {
  const binary = resticBinary();
  if (await versionOf(binary, ["version"])) return undefined;
  return `restic does not run (${binary}): sudo bash scripts/setup.sh builds restic ${pinnedResticVersion}, or RESTIC= names a restic binary`;
}

/**
 * The largest peak RSS (VmHWM) of the service's restic backups while `body` runs, sampled from
 * /proc every 100 ms: composure runs restic by `docker exec` in its helper, so it is a child of
 * the container runtime, not of the command GNU time measures (and a container's memory figures
 * count the page cache it fills, which is no process's RSS). Undefined when none was seen (an
 * engine in another PID namespace, like Docker Desktop's VM).
 */
async function resticPeakDuring<T>(service: string, body: () => Promise<T>): Promise<{ result: T; resticPeakMb?: number }> {
  let peakKb: number | undefined;
  const sample = () => {
    for (const pid of readdirSync("/proc")) {
      if (!/^\d+$/.test(pid)) continue;
      try {
        if (readFileSync(`/proc/${pid}/comm`, "utf8") !== "restic\n") continue;
        // This project's snapshot of this service: not a restic of another test running meanwhile.
        const args = readFileSync(`/proc/${pid}/cmdline`, "utf8");
        if (!args.includes(`\0--host\0${projectName}\0`) || !args.includes(`\0composure-source=${service}/`)) continue;
        const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
        if (hwm) peakKb = Math.max(peakKb ?? 0, Number(hwm[1]));
      } catch {
        // gone meanwhile
      }
    }
  };
  const timer = setInterval(sample, 100);
  try {
    const result = await body();
    return { result, resticPeakMb: peakKb === undefined ? undefined : round(peakKb / 1024, 1) };
  } finally {
    clearInterval(timer);
  }
}

/** What a run added to the repository; throws when a service's artifact is not a restic snapshot. */
function added(backup: BackupRun): number {
  if (backup.addedBytes === undefined) throw new Error(`run ${backup.runId} has artifacts that are not restic snapshots: STORAGE=repository was not used`);
  return backup.addedBytes;
}

/** Rewrites every 100th file (by path, from the first) with new, incompressible bytes of the same size. */
function changeOnePercent(mountpoint: string, names: string[]): { files: number; bytes: number } {
  const chosen = [...names].sort().filter((_, index) => index % 100 === 0);
  let bytes = 0;
  for (const [index, name] of chosen.entries()) {
    const file = path.join(mountpoint, name);
    const size = statSync(file).size;
    writeFileSync(file, pseudoRandom(size, 50_000 + index));
    bytes += size;
  }
  return { files: chosen.length, bytes };
}

/** restic alone: a fresh repository, two backups (the second unchanged) of the same host path. */
async function standaloneRestic(binary: string, mountpoint: string, work: string, timeoutMs: number): Promise<{ seconds: number; addedBytes: number; peakRssMb?: number }[]> {
  const repo = path.join(work, "restic-standalone");
  const cache = path.join(work, "restic-standalone-cache");
  const env = { ...process.env, RESTIC_REPOSITORY: repo, RESTIC_PASSWORD: "composure-bench", RESTIC_CACHE_DIR: cache };
  try {
    await run(binary, ["init"], { env, timeoutMs: 120_000 });
    const backups = [];
    for (const index of [1, 2]) {
      await dropCaches();
      const backup = await measure(binary, ["backup", "--json", "--quiet", "--host", projectName, mountpoint], { env, timeoutMs, statsFile: path.join(work, `restic-standalone-${index}-time.txt`) });
      const summary = lastMessage<{ data_added_packed: number }>(backup.stdout, "summary");
      backups.push({ seconds: backup.seconds, addedBytes: summary.data_added_packed, peakRssMb: backup.peakRssMb });
      say(`repository: restic alone, backup ${index}: ${round(backup.seconds)} s, ${mb(summary.data_added_packed)} MB added`);
    }
    return backups;
  } finally {
    removeDir(repo);
    removeDir(cache);
  }
}

export async function measureRepository(stack: BenchStack, composure: Composure, service: string, volume: string, sizeGb: number, work: string, timeoutMs: number): Promise<RepositoryFigures> {
  const volumeName = stack.volumeName(volume);
  const mountpoint = await stack.mountpoint(volume);
  say(`repository: generating mixed data in ${volumeName}`);
  await generateMixed(mountpoint, sizeGb * 1024 ** 3);
  await run("sync", [], { timeoutMs });
  const bytes = await duBytes(mountpoint);
  const names = (await run("find", [mountpoint, "-type", "f", "-printf", "%P\\n"], { maxOutput: 1 << 30 })).stdout.trim().split("\n");
  const rawRead1 = await rawRead(volumeName, timeoutMs);
  say(`repository: ${mb(bytes)} MB in ${names.length} files, raw read ${round(rawRead1)} s`);

  const archiveDestination = path.join(work, `${service}-archive-backups`);
  const archive = await composure.backup(service, archiveDestination, { STORAGE: "archive" }).finally(() => removeDir(archiveDestination));
  if (archive.strategy !== "volume") throw new Error(`composure backed up ${service} with the ${archive.strategy} strategy, not volume`);
  say(`repository: archive engine, first backup ${round(archive.seconds)} s, ${mb(archive.storedBytes)} MB`);

  const destination = path.join(work, `${service}-repository-backups`);
  const backup = async (label: string) => {
    const { result, resticPeakMb } = await resticPeakDuring(service, () => composure.backup(service, destination, { STORAGE: "repository" }));
    say(`repository: ${label} backup ${round(result.seconds)} s (down ${result.downtimeSeconds} s), ${mb(added(result))} MB added, node ${result.peakRssMb} MB + restic ${resticPeakMb ?? "?"} MB`);
    return { ...result, resticPeakMb };
  };
  try {
    const first = await backup("first");
    const second = await backup("second (unchanged)");
    const changed = changeOnePercent(mountpoint, names);
    const third = await backup(`third (${changed.files} files rewritten)`);
    const digest = await treeDigest(volumeName);
    for (const entry of readdirSync(mountpoint)) removeDir(path.join(mountpoint, entry));
    const restore = await composure.restore(service, destination, third.runId);
    const identical = (await treeDigest(volumeName)) === digest;
    say(`repository: restore ${round(restore.seconds)} s${identical ? "" : ": THE RESTORED TREE DIFFERS"}`);

    const binary = resticBinary();
    const [resticFirst, resticSecond] = await standaloneRestic(binary, mountpoint, work, timeoutMs);
    // A second raw read, after the others: the minimum of the two is the limit.
    const raw = Math.min(rawRead1, await rawRead(volumeName, timeoutMs));

    const runs = [first, second, third];
    const composurePeak = Math.max(...runs.map((entry) => entry.peakRssMb));
    const resticPeaks = runs.map((entry) => entry.resticPeakMb).filter((peak): peak is number => peak !== undefined);
    const resticPeak = resticPeaks.length ? Math.max(...resticPeaks) : undefined;
    return {
      restic_version: (await versionOf(binary, ["version"])) ?? "?",
      bytes,
      files: names.length,
      raw_read_s: round(raw),
      archive_first_s: round(archive.seconds),
      archive_first_bytes: archive.storedBytes,
      first_s: round(first.seconds),
      first_bytes: added(first),
      first_downtime_s: first.downtimeSeconds,
      second_s: round(second.seconds),
      second_added_bytes: added(second),
      second_downtime_s: second.downtimeSeconds,
      changed_files: changed.files,
      changed_bytes: changed.bytes,
      third_s: round(third.seconds),
      third_added_bytes: added(third),
      restore_s: round(restore.seconds),
      restore_identical: identical,
      restic_first_s: round(resticFirst.seconds),
      restic_first_added_bytes: resticFirst.addedBytes,
      restic_first_peak_rss_mb: resticFirst.peakRssMb,
      restic_second_s: round(resticSecond.seconds),
      restic_second_added_bytes: resticSecond.addedBytes,
      composure_peak_rss_mb: composurePeak,
      restic_peak_rss_mb: resticPeak,
      peak_rss_mb: resticPeak === undefined ? undefined : round(composurePeak + resticPeak, 1),
    };
  } finally {
    removeDir(destination);
  }
}

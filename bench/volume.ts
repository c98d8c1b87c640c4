// One volume dataset, measured end to end: raw read of its bytes (the limit), the classic recipe,
// composure backup (stop mode: the manifest's downtime) and restore, and a check that the restore
// brought back the same tree.
import { mkdirSync, statSync } from "node:fs";
import path from "node:path";
import { busyboxImage, countFiles, docker, dropCaches, duBytes, mb, removeDir, round, run, say, timeRoundTrip, type RoundTripFigures } from "./common.ts";
import type { Composure } from "./composure.ts";
import { helperName, type BenchStack } from "./stack.ts";

/**
 * Read-only helper with the volume at /v, like composure's: no network (and so no bridge to set
 * up: 0.1-0.2 s less per run, and no failure when the engine's bridge is being recreated), and
 * a stdout that never carries data (log driver none).
 */
const helperArgs = (volumeName: string) => ["run", "--rm", "--name", helperName(), "--network", "none", "--log-driver", "none", "-v", `${volumeName}:/v:ro`];

/** Reads every byte of the volume once, the way composure's helper does, and throws them away. */
export async function rawRead(volumeName: string, timeoutMs: number, paths = "."): Promise<number> {
  await dropCaches();
  return (await run("docker", [...helperArgs(volumeName), busyboxImage, "sh", "-c", `tar cf - -C /v ${paths} | cat > /dev/null`], { timeoutMs })).seconds;
}

/** The recipe found in most READMEs: `docker run busybox tar czf` into a bind-mounted folder. */
export async function classicRecipe(volumeName: string, dir: string, timeoutMs: number): Promise<{ seconds: number; bytes: number }> {
  mkdirSync(dir, { recursive: true });
  await dropCaches();
  const result = await run("docker", [...helperArgs(volumeName), "-v", `${dir}:/backup`, busyboxImage, "tar", "czf", "/backup/backup.tar.gz", "-C", "/v", "."], { timeoutMs });
  return { seconds: result.seconds, bytes: statSync(path.join(dir, "backup.tar.gz")).size };
}

/** Files, total bytes and a listing digest (path + size of every file), to check a restore. */
export async function treeDigest(volumeName: string): Promise<string> {
  const script = "cd /v && find . -type f -exec stat -c '%n %s' {} + | sort | md5sum";
  return (await docker(...helperArgs(volumeName), busyboxImage, "sh", "-c", script)).split(" ")[0];
}

export interface VolumeFigures extends RoundTripFigures {
  bytes: number;
  files: number;
  raw_read_s: number;
  classic_s: number;
  classic_bytes: number;
  restore_identical: boolean;
  backup_vs_classic: number;
  backup_vs_raw_read: number;
  restore_vs_raw_read: number;
  downtime_limit_s: number;
}

export interface VolumeDataset {
  label: string;
  service: string;
  volume: string;
  generate: (mountpoint: string) => Promise<void>;
}

export async function measureVolume(stack: BenchStack, composure: Composure, dataset: VolumeDataset, work: string, timeoutMs: number): Promise<{ figures: VolumeFigures; mountpoint: string }> {
  const volumeName = stack.volumeName(dataset.volume);
  const mountpoint = await stack.mountpoint(dataset.volume);
  say(`${dataset.label}: generating data in ${volumeName}`);
  const generating = process.hrtime.bigint();
  await dataset.generate(mountpoint);
  await run("sync", [], { timeoutMs });
  const bytes = await duBytes(mountpoint);
  const files = await countFiles(mountpoint);
  say(`${dataset.label}: ${mb(bytes)} MB in ${files} files (generated in ${round(Number(process.hrtime.bigint() - generating) / 1e9, 1)} s)`);
  const digest = await treeDigest(volumeName);

  const rawRead1 = await rawRead(volumeName, timeoutMs);
  say(`${dataset.label}: raw read ${round(rawRead1)} s`);
  const classicDir = path.join(work, `${dataset.service}-classic`);
  const classic = await classicRecipe(volumeName, classicDir, timeoutMs);
  removeDir(classicDir);
  say(`${dataset.label}: classic recipe ${round(classic.seconds)} s, ${mb(classic.bytes)} MB`);

  const { backup, figures: roundTrip } = await timeRoundTrip(composure, dataset.service, "volume", dataset.label, work);
  const identical = (await treeDigest(volumeName)) === digest;
  if (!identical) say(`${dataset.label}: THE RESTORED TREE DIFFERS`);
  // A second raw read, after the others: the minimum of the two is the limit.
  const raw = Math.min(rawRead1, await rawRead(volumeName, timeoutMs));

  const figures: VolumeFigures = {
    bytes,
    files,
    raw_read_s: round(raw),
    classic_s: round(classic.seconds),
    classic_bytes: classic.bytes,
    ...roundTrip,
    restore_identical: identical,
    backup_vs_classic: round(classic.seconds / backup.seconds),
    backup_vs_raw_read: round(backup.seconds / raw),
    restore_vs_raw_read: round(roundTrip.restore_s / raw),
    downtime_limit_s: round(1.5 * raw + 3),
  };
  return { figures, mountpoint };
}

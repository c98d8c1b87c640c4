// Scaling: the same mixed data at 0.25, 0.5, 1 and 2 x BENCH_SIZE, grown in place (each step adds
// a slice of the same mix), backed up by composure at each size: time should grow linearly with
// the bytes and peak RSS should stay flat.
import path from "node:path";
import { duBytes, fitLine, mb, removeDir, round, say } from "./common.ts";
import type { Composure } from "./composure.ts";
import { generateMixed } from "./datasets.ts";
import type { BenchStack } from "./stack.ts";
import { rawRead } from "./volume.ts";

export const scalingFactors = [0.25, 0.5, 1, 2];

export interface ScalingStep {
  factor: number;
  size_gb: number;
  bytes: number;
  raw_read_s: number;
  backup_s: number;
  backup_per_gb_s: number;
  peak_rss_mb: number;
  tree_peak_rss_mb?: number;
  cpu_s: number;
}

export interface ScalingFigures {
  steps: ScalingStep[];
  /** Least-squares line backup_s = fixed_s + per_gb_s * GB, and how well it fits (R²). */
  fixed_s: number;
  per_gb_s: number;
  r_squared: number;
  peak_rss_min_mb: number;
  peak_rss_max_mb: number;
}

export async function measureScaling(stack: BenchStack, composure: Composure, service: string, volume: string, sizeGb: number, work: string, timeoutMs: number): Promise<ScalingFigures> {
  const mountpoint = await stack.mountpoint(volume);
  const volumeName = stack.volumeName(volume);
  const steps: ScalingStep[] = [];
  let present = 0;
  for (const [index, factor] of scalingFactors.entries()) {
    const target = factor * sizeGb * 1024 ** 3;
    say(`scaling: growing ${volumeName} to ${round(factor * sizeGb, 3)} GB`);
    await generateMixed(path.join(mountpoint, `part-${index}`), target - present, index + 1);
    const bytes = await duBytes(mountpoint);
    present = bytes;
    const raw = await rawRead(volumeName, timeoutMs);
    const destination = path.join(work, `${service}-backups-${index}`);
    const backup = await composure.backup(service, destination);
    removeDir(destination);
    const gb = bytes / 1024 ** 3;
    steps.push({
      factor,
      size_gb: round(gb, 3),
      bytes,
      raw_read_s: round(raw),
      backup_s: round(backup.seconds),
      backup_per_gb_s: round(backup.seconds / gb),
      peak_rss_mb: backup.peakRssMb,
      tree_peak_rss_mb: backup.treePeakRssMb,
      cpu_s: backup.cpuSeconds,
    });
    say(`scaling: ${mb(bytes)} MB backed up in ${round(backup.seconds)} s, node peak RSS ${backup.peakRssMb} MB`);
  }
  const fit = fitLine(steps.map((step) => [step.size_gb, step.backup_s]));
  const rss = steps.map((step) => Math.max(step.peak_rss_mb, step.tree_peak_rss_mb ?? 0));
  return { steps, fixed_s: round(fit.intercept), per_gb_s: round(fit.slope), r_squared: round(fit.rSquared, 3), peak_rss_min_mb: Math.min(...rss), peak_rss_max_mb: Math.max(...rss) };
}

// Shared by the bench modules: settings from the environment, child processes with a time limit,
// resource figures from /usr/bin/time, the timed composure round trip every dataset goes through,
// and small formatting helpers.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { $, type ProcessPromise } from "zx";
import { takeTurn } from "../test/support/composure.ts";
import type { BackupRun, Composure } from "./composure.ts";

export const root = path.resolve(import.meta.dirname, "..");
export const busyboxImage = process.env.COMPOSURE_IMAGE_BUSYBOX ?? "composure-fixture/busybox:latest";
export const postgresImage = process.env.COMPOSURE_IMAGE_POSTGRES ?? "composure-fixture/postgres:latest";
export const cassandraImage = process.env.COMPOSURE_IMAGE_CASSANDRA ?? "composure-fixture/cassandra:latest";
export const opensearchImage = process.env.COMPOSURE_IMAGE_OPENSEARCH ?? "composure-fixture/opensearch:latest";
export const mariadbImage = process.env.COMPOSURE_IMAGE_MARIADB ?? "composure-fixture/mariadb:latest";
export const sqliteImage = process.env.COMPOSURE_IMAGE_SQLITE ?? "composure-fixture/sqlite:latest";
export const prometheusImage = process.env.COMPOSURE_IMAGE_PROMETHEUS ?? "composure-fixture/prometheus:latest";

/** Every part `BENCH_ONLY=` can name, in the order they run. */
export const sections = ["volume", "smallfiles", "postgres", "peers", "repository", "s3", "scaling", "cassandra", "opensearch", "stack"] as const;
export type Section = (typeof sections)[number];

export interface Settings {
  /** BENCH_SIZE, in GB: the mixed volume's size; the other datasets scale with it. */
  sizeGb: number;
  only: Set<Section>;
  /** Scratch space for archives, repositories and restores; removed at the end. */
  work: string;
}

export function readSettings(): Settings {
  const sizeGb = Number(process.env.BENCH_SIZE || "1");
  if (!Number.isFinite(sizeGb) || sizeGb <= 0 || sizeGb > 64) throw new Error(`BENCH_SIZE must be a number of GB above 0 (at most 64), not "${process.env.BENCH_SIZE}"`);
  const named = (process.env.BENCH_ONLY ?? "").split(",").map((item) => item.trim()).filter(Boolean);
  for (const name of named) if (!(sections as readonly string[]).includes(name)) throw new Error(`BENCH_ONLY: unknown part "${name}" (known: ${sections.join(", ")})`);
  const only = new Set<Section>(named.length ? (named as Section[]) : sections);
  if (!named.includes("scaling") && ["0", "false", "no"].includes((process.env.BENCH_SCALING ?? "").toLowerCase())) only.delete("scaling");
  // The peers are measured on the mixed volume, against composure's figures for it.
  if (only.has("peers")) only.add("volume");
  if (coldCache && process.getuid?.() !== 0) throw new Error("BENCH_DROP_CACHES=1 needs root (it writes /proc/sys/vm/drop_caches)");
  const work = mkdtempSync(path.join(process.env.BENCH_TMPDIR || os.tmpdir(), "composure-bench-"));
  return { sizeGb, only, work };
}

export const round = (value: number, digits = 2) => Math.round(value * 10 ** digits) / 10 ** digits;
export const mb = (bytes: number) => round(bytes / 1024 ** 2, 1);
export const seconds = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e9;

/**
 * CPU seconds the whole machine has spent busy since boot (every process, containers included),
 * from /proc/stat's first line in USER_HZ (100 per second on Linux): all but idle and iowait.
 */
export function machineBusySeconds(): number {
  const [user, nice, system, , , irq, softirq, steal] = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
  return (user + nice + system + irq + softirq + steal) / 100;
}

export function say(message: string): void {
  process.stderr.write(`bench ${new Date().toISOString().slice(11, 19)} ${message}\n`);
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  seconds: number;
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Killed (SIGTERM, then SIGKILL) after this long; the default is generous but bounded. */
  timeoutMs?: number;
  /** Return a non-zero exit instead of throwing. */
  allowFailure?: boolean;
  /** Keep at most this much of stdout in the result. */
  maxOutput?: number;
  /** A clean-up step: runs even after an interrupt (everything else is refused then). */
  cleanup?: boolean;
}

let interrupted: string | undefined;
/** After a signal: no new measurement starts; only clean-up steps still run. */
export function interrupt(signal: string): void {
  interrupted = signal;
}
export const isInterrupted = () => interrupted !== undefined;

let running = new Set<ProcessPromise>();

/** Runs a program (zx, argv quoted; no shell interprets a value); throws with its last words on a non-zero exit or a timeout. */
export async function run(command: string, args: string[], options: RunOptions = {}): Promise<RunResult> {
  const { timeoutMs = 3_600_000, maxOutput = 16 << 20 } = options;
  if (interrupted && !options.cleanup) throw new Error(`interrupted by ${interrupted}`);
  const started = process.hrtime.bigint();
  // exec: the shell becomes the program, so the signals below reach it
  const program = $({ cwd: options.cwd ?? root, env: options.env ?? process.env, stdio: ["ignore", "pipe", "pipe"], quiet: true, nothrow: true })`exec ${command} ${args}`;
  running.add(program);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    program.child?.kill("SIGTERM");
    setTimeout(() => program.child?.kill("SIGKILL"), 10_000).unref();
  }, timeoutMs);
  const output = await program.finally(() => {
    clearTimeout(timer);
    running.delete(program);
  });
  if (output.cause) throw new Error(`${command}: ${output.cause.message}`);
  const stdout = output.stdout.slice(0, maxOutput);
  const stderr = output.stderr.slice(-20_000);
  if (timedOut) throw new Error(`${command} ${args.slice(0, 3).join(" ")} ...: no result after ${timeoutMs / 1000} s, stopped`);
  if (output.exitCode !== 0 && !options.allowFailure) {
    throw new Error(`${command} ${args.slice(0, 4).join(" ")} ... exited with ${output.exitCode ?? output.signal}: ${lastLines(stderr || stdout)}`);
  }
  return { code: output.exitCode ?? 128, stdout, stderr, seconds: seconds(started) };
}

/** Stops every child this process still has running (its own children only). */
export function stopChildren(): void {
  for (const program of running) program.child?.kill("SIGTERM"); // a no-op for one already gone
  running = new Set();
}

export const lastLines = (text: string, count = 4) => text.trim().split("\n").slice(-count).join(" | ").slice(0, 600);

export async function docker(...args: string[]): Promise<string> {
  return (await run("docker", args, { maxOutput: 64 << 20 })).stdout.trim();
}

export interface Measured {
  seconds: number;
  /** The largest resident set of any single process in the tree (GNU time %M), MB. */
  peakRssMb?: number;
  /** User + system CPU of the process and every child it waited for, s. */
  cpuSeconds?: number;
  stdout: string;
  stderr: string;
}

const gnuTime = existsSync("/usr/bin/time") ? "/usr/bin/time" : undefined;

/** Runs a program under GNU time (when present) for its peak RSS and CPU, timed from here. */
export async function measure(command: string, args: string[], options: RunOptions & { statsFile: string }): Promise<Measured> {
  if (!gnuTime) {
    const result = await run(command, args, options);
    return { seconds: result.seconds, stdout: result.stdout, stderr: result.stderr };
  }
  const result = await run(gnuTime, ["-o", options.statsFile, "-f", "%M %U %S", command, ...args], options);
  const [rssKb, user, system] = readFileSync(options.statsFile, "utf8").trim().split("\n").at(-1)!.split(" ").map(Number);
  return { seconds: result.seconds, peakRssMb: round(rssKb / 1024, 1), cpuSeconds: round(user + system), stdout: result.stdout, stderr: result.stderr };
}

export async function duBytes(dir: string): Promise<number> {
  return Number((await run("du", ["-sb", dir])).stdout.split("\t")[0]);
}

export async function countFiles(dir: string): Promise<number> {
  const result = await run("find", [dir, "-type", "f", "-printf", "."], { maxOutput: 1 << 30 });
  return result.stdout.length;
}

export async function versionOf(command: string, args: string[], pattern = /\d+\.\d+(\.\d+)?/): Promise<string | undefined> {
  try {
    const result = await run(command, args, { allowFailure: true, timeoutMs: 30_000 });
    return (result.stdout + result.stderr).match(pattern)?.[0];
  } catch {
    return undefined;
  }
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/**
 * BENCH_DROP_CACHES=1 (root only): write back and drop the page cache before each timed read, so
 * every tool reads from the disk, not from memory. It empties the cache of the whole machine:
 * for a quiet machine. Without it every tool reads the freshly generated data from a warm cache.
 */
export const coldCache = ["1", "true", "yes"].includes((process.env.BENCH_DROP_CACHES ?? "").toLowerCase());

export async function dropCaches(): Promise<void> {
  if (!coldCache) return;
  await run("sync", [], { timeoutMs: 600_000 });
  writeFileSync("/proc/sys/vm/drop_caches", "3\n");
}

/** A time limit that grows with the amount of data: base plus so many seconds per GB. */
export const limitMs = (sizeGb: number, base = 600, perGb = 600) => Math.round((base + perGb * sizeGb) * 1000);

/** What every composure round trip (a backup, then a restore of that run) reports, as in results.json. */
export interface RoundTripFigures {
  backup_s: number;
  backup_cpu_s: number;
  backup_tree_cpu_s?: number;
  backup_peak_rss_mb: number;
  backup_tree_peak_rss_mb?: number;
  stored_bytes: number;
  downtime_s: number;
  restore_s: number;
  restore_cpu_s: number;
  restore_peak_rss_mb: number;
  restore_tree_peak_rss_mb?: number;
  /** The largest of the four peaks: node's own and the largest process of each tree. */
  peak_rss_mb: number;
}

/** A composure backup of one service that must have used `strategy`. */
async function backupWith(composure: Composure, service: string, strategy: string, destination: string): Promise<BackupRun> {
  const backup = await composure.backup(service, destination);
  if (backup.strategy !== strategy) throw new Error(`composure backed up ${service} with the ${backup.strategy} strategy, not ${strategy}`);
  return backup;
}

/**
 * Backs up one service with composure into a destination of its own, checks that the expected
 * strategy did it, restores that run, and removes the destination. The caller checks the data.
 */
/** More to time with a run before its folder goes (Cassandra: a restore into a new ring); returns its figures. */
export type AfterRestore = (runId: string, destination: string) => Promise<Record<string, number | boolean>>;

export async function timeRoundTrip(composure: Composure, service: string, strategy: string, label: string, work: string, afterRestore?: AfterRestore): Promise<{ backup: BackupRun; figures: RoundTripFigures; more: Record<string, number | boolean> }> {
  const destination = path.join(work, `${service}-backups`);
  try {
    const backup = await backupWith(composure, service, strategy, destination);
    say(`${label}: composure backup ${round(backup.seconds)} s (capture ${backup.serviceSeconds} s, down ${backup.downtimeSeconds} s), ${mb(backup.storedBytes)} MB, node peak RSS ${backup.peakRssMb} MB`);
    const restore = await composure.restore(service, destination, backup.runId);
    say(`${label}: composure restore ${round(restore.seconds)} s`);
    const peaks = [backup.peakRssMb, restore.peakRssMb, backup.treePeakRssMb ?? 0, restore.treePeakRssMb ?? 0];
    const figures: RoundTripFigures = {
      backup_s: round(backup.seconds),
      backup_cpu_s: backup.cpuSeconds,
      backup_tree_cpu_s: backup.treeCpuSeconds,
      backup_peak_rss_mb: backup.peakRssMb,
      backup_tree_peak_rss_mb: backup.treePeakRssMb,
      stored_bytes: backup.storedBytes,
      downtime_s: backup.downtimeSeconds,
      restore_s: round(restore.seconds),
      restore_cpu_s: restore.cpuSeconds,
      restore_peak_rss_mb: restore.peakRssMb,
      restore_tree_peak_rss_mb: restore.treePeakRssMb,
      peak_rss_mb: round(Math.max(...peaks), 1),
    };
    const more = afterRestore ? await afterRestore(backup.runId, destination) : {};
    return { backup, figures, more };
  } finally {
    removeDir(destination);
  }
}

/** What was loaded into a database or search engine before it is measured. */
export interface LoadedDataset {
  engine_version: string;
  /** Rows of the table (Cassandra), documents of the index (OpenSearch). */
  records: number;
  /** The table's or index's own bytes on disk, and the engine's whole data directory. */
  dataset_bytes: number;
  data_dir_bytes: number;
  load_s: number;
}

export interface EngineFigures extends LoadedDataset, RoundTripFigures {
  raw_read_s: number;
  backup_vs_raw_read: number;
  restore_vs_raw_read: number;
  /** The restored table or index holds exactly the records loaded. */
  restore_records_ok: boolean;
}

export interface EngineRun {
  composure: Composure;
  service: string;
  strategy: string;
  label: string;
  work: string;
  /** Reads the engine's data directory once (the limit), in seconds. */
  readRaw: () => Promise<number>;
  /** Counts the records the engine holds now. */
  count: () => Promise<number>;
  afterRestore?: AfterRestore;
}

/** An engine with its data loaded: raw read, composure round trip (hot), and a count of what came back. */
export async function measureEngine(engine: EngineRun, dataset: LoadedDataset): Promise<EngineFigures> {
  const raw = await engine.readRaw();
  say(`${engine.label}: raw read of the data directory ${round(raw)} s`);
  let restored = 0;
  const { figures, more } = await timeRoundTrip(engine.composure, engine.service, engine.strategy, engine.label, engine.work, async (runId, destination) => {
    restored = await engine.count(); // before a later restore (afterRestore) replaces what this one restored
    return engine.afterRestore ? engine.afterRestore(runId, destination) : {};
  });
  if (restored !== dataset.records) say(`${engine.label}: ${restored} records after the restore, expected ${dataset.records}`);
  return {
    ...dataset,
    raw_read_s: round(raw),
    ...figures,
    backup_vs_raw_read: round(figures.backup_s / raw),
    restore_vs_raw_read: round(figures.restore_s / raw),
    restore_records_ok: restored === dataset.records,
    ...more,
  };
}

/** Ordinary least squares through (x, y) points. */
export function fitLine(points: [number, number][]): { slope: number; intercept: number; rSquared: number } {
  const n = points.length;
  const meanX = points.reduce((sum, [x]) => sum + x, 0) / n;
  const meanY = points.reduce((sum, [, y]) => sum + y, 0) / n;
  const sxx = points.reduce((sum, [x]) => sum + (x - meanX) ** 2, 0);
  const sxy = points.reduce((sum, [x, y]) => sum + (x - meanX) * (y - meanY), 0);
  const slope = sxx ? sxy / sxx : 0;
  const intercept = meanY - slope * meanX;
  const total = points.reduce((sum, [, y]) => sum + (y - meanY) ** 2, 0);
  const residual = points.reduce((sum, [x, y]) => sum + (y - intercept - slope * x) ** 2, 0);
  return { slope, intercept, rSquared: total ? 1 - residual / total : 1 };
}

export interface SlopePoint {
  factor: number;
  /** The table's or index's own bytes at this size. */
  dataset_bytes: number;
  raw_read_s: number;
  backup_s: number;
}

/** Backup time per GB of the dataset, next to the raw read's, from the points (least squares). */
export interface SlopeFigures {
  slope_points: SlopePoint[];
  slope_s_per_gb: number;
  raw_slope_s_per_gb: number;
  /** The backup's fixed cost: its line at 0 bytes. */
  intercept_s: number;
}

/** A point of the slope without a restore: a raw read and a composure backup of the dataset as it is now. */
export async function slopePoint(engine: EngineRun, factor: number, datasetBytes: number): Promise<SlopePoint> {
  const raw = await engine.readRaw();
  const destination = path.join(engine.work, `${engine.service}-slope-${factor}`);
  try {
    const backup = await backupWith(engine.composure, engine.service, engine.strategy, destination);
    say(`${engine.label}: ${factor}x (${mb(datasetBytes)} MB): raw read ${round(raw)} s, composure backup ${round(backup.seconds)} s`);
    return { factor, dataset_bytes: datasetBytes, raw_read_s: round(raw), backup_s: round(backup.seconds) };
  } finally {
    removeDir(destination);
  }
}

export function slopeOf(points: SlopePoint[]): SlopeFigures {
  const line = (seconds: (point: SlopePoint) => number) => fitLine(points.map((point) => [point.dataset_bytes / 1e9, seconds(point)]));
  const backup = line((point) => point.backup_s);
  return { slope_points: points, slope_s_per_gb: round(backup.slope), raw_slope_s_per_gb: round(line((point) => point.raw_read_s).slope), intercept_s: round(backup.intercept) };
}

/** How an engine's dataset grows in place: `count` more records from record `first` on. */
export interface Growth {
  grow: (count: number, first: number) => Promise<void>;
  /** The table's or index's own bytes now. */
  datasetBytes: () => Promise<number>;
  /** What was loaded at 1x, given how long the loads took. */
  describe: (loadSeconds: number) => Promise<LoadedDataset>;
}

/**
 * The dataset grown in place to 0.5x, 1x and 2x of `records`: a raw read and a backup at 0.5x
 * and 2x, the whole measurement (measureEngine) at 1x, and the slope through the three.
 */
export async function measureEngineWithSlope(engine: EngineRun, records: number, growth: Growth): Promise<EngineFigures & SlopeFigures> {
  const half = Math.round(records / 2);
  let started = process.hrtime.bigint();
  await growth.grow(half, 0);
  let loadSeconds = seconds(started);
  const low = await slopePoint(engine, 0.5, await growth.datasetBytes());
  started = process.hrtime.bigint();
  await growth.grow(records - half, half);
  loadSeconds += seconds(started);
  const figures = await measureEngine(engine, await growth.describe(loadSeconds));
  await growth.grow(records, records);
  const high = await slopePoint(engine, 2, await growth.datasetBytes());
  const middle = { factor: 1, dataset_bytes: figures.dataset_bytes, raw_read_s: figures.raw_read_s, backup_s: figures.backup_s };
  return { ...figures, ...slopeOf([low, middle, high]) };
}

/**
 * Runs `body` in the machine's JVM turn, shared with the integration tests
 * (test/support/composure.ts takeTurn): one Cassandra cluster at a time on this engine. Waits for
 * the turn, then until no Cassandra container of anyone runs (it removes none).
 */
export async function inJvmTurn<T>(body: () => Promise<T>, timeoutMs = 1_800_000): Promise<T> {
  say("waiting for the machine's Cassandra turn (no other Cassandra container running)");
  const release = await takeTurn("cassandra", timeoutMs);
  try {
    await waitUntil("machine without other Cassandra containers", async () => (await docker("ps", "-q", "--filter", `ancestor=${cassandraImage}`)) === "", timeoutMs, 5000);
    return await body();
  } finally {
    release();
  }
}

/** Polls `check` every `everyMs` until it returns true; throws `what` after `timeoutMs`. */
export async function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs: number, everyMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (isInterrupted()) throw new Error(`interrupted while waiting for ${what}`);
    if (Date.now() > deadline) throw new Error(`no ${what} within ${Math.round(timeoutMs / 1000)} s`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

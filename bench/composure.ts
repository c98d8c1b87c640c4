// Runs composure's commands as an operator would: `make backup` / `make restore` run these bundles
// (dist/<name>.mjs, built by `make bench` first), with COMPOSURE_STATS_FILE for the node process's
// peak RSS and CPU, and GNU time around it for the whole tree (zstd included). Each dataset gets
// its own destination.
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { busyboxImage, dropCaches, measure, root, round } from "./common.ts";
import { projectName } from "./stack.ts";

/** Variables the Makefile exports (often empty), and STORAGE, that would change what a script does: set per command here. */
const composureVariables = ["STORAGE", "PROJECT", "SERVICE", "RUN", "VOLUME", "DRY_RUN", "FORCE", "NO_RESCUE", "CONFLICT", "CONFIG", "DESTINATION", "LOCK_TIMEOUT", "FROM", "TIER", "METRICS_DIR", "CRON", "CRON_FILE", "CRON_LOG", "AGE_IDENTITY_FILE", "COMPOSURE_FAILPOINT", "PARALLELISM"];

export interface ComposureRun {
  seconds: number;
  /** Peak RSS of composure's node process (its own report), MB. */
  peakRssMb: number;
  /** CPU seconds of composure's node process. */
  cpuSeconds: number;
  /** Largest single process of the tree (node or zstd), from GNU time, MB. */
  treePeakRssMb?: number;
  /** CPU seconds of node and every child it waited for (zstd, tar on restore ...). */
  treeCpuSeconds?: number;
  /** The command's own log (stderr), also kept in bench/logs/. */
  log: string;
}

export interface BackupRun extends ComposureRun {
  runId: string;
  runDir: string;
  /** Sum of the service's artifact sizes from the manifest (repository artifacts: the source's size). */
  storedBytes: number;
  /** Sum of what the service's artifacts added to the repository; undefined unless every one is a restic snapshot. */
  addedBytes?: number;
  /** services[].downtimeSeconds of the manifest (0 for hot strategies). */
  downtimeSeconds: number;
  /** services[].durationSeconds: the service's own capture, without process start and discovery. */
  serviceSeconds: number;
  strategy: string;
}

/** What the bench reads of a service's record in a run's manifest. */
export interface ServiceRecord {
  name: string;
  strategy: string;
  status: string;
  error?: string;
  /** Containers the capture stopped: empty for hot strategies. */
  stopped: string[];
  downtimeSeconds: number;
  durationSeconds: number;
  artifacts: { bytes: number; repository?: { addedBytes: number } }[];
}

/** A timed `make backup` and its run's manifest. */
export interface StackRun extends ComposureRun {
  runId: string;
  runDir: string;
  outcome: string;
  services: ServiceRecord[];
}

let sequence = 0;

/** Where each command's log is kept after the run (the scratch folder is removed): bench/logs/. */
export function benchLogs(): string {
  const dir = path.join(root, "bench", "logs");
  mkdirSync(dir, { recursive: true });
  return dir;
}

export class Composure {
  readonly config: string;
  readonly metricsDir: string;

  /** `project`: the Compose project its commands back up and restore (PROJECT=). */
  constructor(private readonly work: string, private readonly timeoutMs: number, readonly project = projectName) {
    this.config = path.join(work, "composure.yml");
    this.metricsDir = path.join(work, "metrics");
    mkdirSync(this.metricsDir, { recursive: true });
    // An empty config: nothing from a composure.yml lying in the repository changes the figures.
    if (!existsSync(this.config)) writeFileSync(this.config, "# composure bench: defaults only\n{}\n");
  }

  private async script(name: "backup" | "restore" | "sync", destination: string, env: Record<string, string>): Promise<ComposureRun> {
    const tag = `${name}-${++sequence}`;
    const statsFile = path.join(this.work, `${tag}-node.json`);
    const clean = { ...process.env };
    for (const key of composureVariables) delete clean[key];
    const result = await measure(process.execPath, [path.join(root, "dist", `${name}.mjs`)], {
      statsFile: path.join(this.work, `${tag}-time.txt`),
      cwd: root,
      timeoutMs: this.timeoutMs,
      env: { ...clean, PROJECT: this.project, DESTINATION: destination, CONFIG: this.config, METRICS_DIR: this.metricsDir, COMPOSURE_HELPER_IMAGE: busyboxImage, COMPOSURE_STATS_FILE: statsFile, ...env },
    });
    writeFileSync(path.join(benchLogs(), `${tag}.log`), result.stderr ?? ""); // the command's own timeline, to see where the time went
    const stats = JSON.parse(readFileSync(statsFile, "utf8")) as { peakRssMb: number; cpuSeconds: number };
    return { seconds: result.seconds, peakRssMb: round(stats.peakRssMb, 1), cpuSeconds: round(stats.cpuSeconds), treePeakRssMb: result.peakRssMb, treeCpuSeconds: result.cpuSeconds, log: result.stderr ?? "" };
  }

  /** `env`: more for this command, e.g. STORAGE=repository. */
  async backup(service: string, destination: string, env: Record<string, string> = {}): Promise<BackupRun> {
    const run = await this.backupRun(destination, { ...env, SERVICE: service });
    const record = run.services.find((entry) => entry.name === service);
    if (!record || record.status !== "ok") throw new Error(`composure backup of ${service}: ${record?.error ?? `service missing from the manifest (outcome ${run.outcome})`}`);
    return {
      ...run,
      storedBytes: record.artifacts.reduce((sum, artifact) => sum + artifact.bytes, 0),
      addedBytes: record.artifacts.every((artifact) => artifact.repository) ? record.artifacts.reduce((sum, artifact) => sum + artifact.repository!.addedBytes, 0) : undefined,
      downtimeSeconds: record.downtimeSeconds,
      serviceSeconds: record.durationSeconds,
      strategy: record.strategy,
    };
  }

  /** `make backup` of the whole project (no SERVICE=): every service must have succeeded. */
  async backupAll(destination: string, env: Record<string, string> = {}): Promise<StackRun> {
    const run = await this.backupRun(destination, env);
    const failed = run.services.filter((record) => record.status !== "ok");
    if (run.outcome !== "success" || failed.length) throw new Error(`composure backup of ${this.project}: ${run.outcome}; ${failed.map((record) => `${record.name}: ${record.error}`).join("; ")}`);
    return run;
  }

  /** One timed `make backup` into `destination`, and the manifest of the run it added. */
  private async backupRun(destination: string, env: Record<string, string>): Promise<StackRun> {
    const before = new Set(this.runIds(destination));
    await dropCaches();
    const measured = await this.script("backup", destination, env);
    const runId = this.runIds(destination).find((id) => !before.has(id));
    if (!runId) throw new Error(`composure backup${env.SERVICE ? ` of ${env.SERVICE}` : ""} left no complete run in ${destination}`);
    const runDir = path.join(destination, this.project, runId);
    const manifest = JSON.parse(readFileSync(path.join(runDir, "manifest.json"), "utf8")) as Pick<StackRun, "outcome" | "services">;
    return { ...measured, runId, runDir, outcome: manifest.outcome, services: manifest.services };
  }

  /** `make sync`: uploads the destination's complete runs missing on the remote (`env` names the config). */
  async sync(destination: string, env: Record<string, string>): Promise<ComposureRun> {
    await dropCaches();
    return this.script("sync", destination, env);
  }

  async restore(service: string, destination: string, runId: string): Promise<ComposureRun> {
    return this.script("restore", destination, { SERVICE: service, RUN: runId, FORCE: "1", NO_RESCUE: "1" });
  }

  /** Complete runs (with a manifest) of the project under a destination, oldest first. */
  private runIds(destination: string): string[] {
    const dir = path.join(destination, this.project);
    if (!existsSync(dir)) return [];
    return readdirSync(dir)
      .filter((name) => existsSync(path.join(dir, name, "manifest.json")))
      .sort();
  }
}

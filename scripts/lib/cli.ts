// What every script shares: one top-level catch that maps errors to exit codes, the config, the
// projects to act on, and the helper image.
import { existsSync, writeFileSync } from "node:fs";
import path from "node:path";
import { configureArchives } from "./archive/files.ts";
import { removeAbandonedPipeDirs } from "./docker/pipe-dir.ts";
import { loadConfig } from "./config/load.ts";
import { storageEngines, type Config, type StorageEngine } from "./config/schema.ts";
import { checkEngine } from "./docker/engine.ts";
import { defaultHelperImage, ensureHelperImage } from "./docker/helper-image.ts";
import { removeAbandonedDrills } from "./docker/scratch-stack.ts";
import { ConfigError, exitCodeOf, UsageError } from "./errors.ts";
import { log } from "./log.ts";
import { strategyKinds } from "./strategies/registry.ts";

export async function main(task: () => Promise<number>): Promise<void> {
  // Beside the task, not before it: it only touches the scratch objects of drills whose process is gone.
  const drills = removeAbandonedDrillsQuietly();
  try {
    await removeAbandonedPipeDirs();
    process.exitCode = await task();
    await drills;
    writeStats();
  } catch (error) {
    if (error instanceof ConfigError || error instanceof UsageError) log.error(error.message);
    else log.error(error instanceof Error ? error.message : String(error));
    if (process.env.COMPOSURE_DEBUG && error instanceof Error) log.error(error.stack ?? "");
    process.exitCode = exitCodeOf(error);
  }
  // The result is in: whatever is still pending (a request to an engine that stopped answering,
  // a child that does not end) must not keep the command alive. A clean run exits before this.
  setTimeout(() => process.exit(), exitGraceMs).unref();
}

const exitGraceMs = 5000;

/**
 * Whatever command runs, it also removes the scratch stacks of restore drills whose process was
 * killed (SIGKILL leaves no chance to clean up). No engine, or a slow one: nothing to do here (the
 * commands that need the engine say so themselves, through checkEngine).
 */
async function removeAbandonedDrillsQuietly(): Promise<void> {
  const timeout = new Promise<string[]>((resolve) => setTimeout(() => resolve([]), 5000).unref());
  // A ping that gives up first: requests to a daemon that accepts and never answers would stay open.
  const sweep = checkEngine(4000).then(removeAbandonedDrills);
  const removed = await Promise.race([sweep.catch(() => []), timeout]);
  for (const project of removed) log.warn(`removed the scratch containers, volumes and network of an interrupted restore drill (${project})`);
}

/** COMPOSURE_STATS_FILE=<path>: the process's peak RSS and CPU time, for `make bench`. */
function writeStats(): void {
  const file = process.env.COMPOSURE_STATS_FILE;
  if (!file) return;
  const usage = process.resourceUsage();
  writeFileSync(file, JSON.stringify({ peakRssMb: usage.maxRSS / 1024, cpuSeconds: (usage.userCPUTime + usage.systemCPUTime) / 1e6 }));
}

export function flag(name: string): boolean {
  return ["1", "true", "yes"].includes((process.env[name] ?? "").toLowerCase());
}

export function loadSettings(): Config {
  const { config } = loadConfig(process.env, strategyKinds);
  config.destination = path.resolve(process.env.DESTINATION || config.destination);
  config.metrics.textfile_dir = path.resolve(process.env.METRICS_DIR || config.metrics.textfile_dir);
  if (process.env.LOCK_TIMEOUT) {
    const seconds = Number(process.env.LOCK_TIMEOUT);
    if (!Number.isInteger(seconds) || seconds < 0) throw new ConfigError([`LOCK_TIMEOUT must be a whole number of seconds, got "${process.env.LOCK_TIMEOUT}"`]);
    config.lock.timeout_seconds = seconds;
  }
  if (process.env.PARALLELISM) {
    const units = Number(process.env.PARALLELISM);
    if (!Number.isInteger(units) || units < 1) throw new ConfigError([`PARALLELISM must be a whole number of units captured at once (1 or more), got "${process.env.PARALLELISM}"`]);
    config.parallelism = units;
  }
  const storage = process.env.STORAGE;
  if (storage) {
    if (!(storageEngines as readonly string[]).includes(storage)) throw new ConfigError([`STORAGE must be ${storageEngines.join(" or ")}, got "${storage}"`]);
    config.storage = { default: storage as StorageEngine }; // this command's engine for every service without its own
  }
  configureArchives({
    compression: config.compression.algorithm,
    recipients: config.encryption?.recipients ?? [],
    identityFile: process.env.AGE_IDENTITY_FILE || config.encryption?.identity_file,
  });
  return config;
}

const composeFiles = ["compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml"];

/** PROJECT= (comma list), else composure.yml's projects, else the compose file in this folder. */
export function projectsToUse(config: Config): string[] {
  const fromEnv = (process.env.PROJECT ?? "").split(",").map((name) => name.trim()).filter(Boolean);
  if (fromEnv.length) return fromEnv;
  if (config.projects?.length) return config.projects;
  if (process.env.COMPOSE_PROJECT_NAME) return [process.env.COMPOSE_PROJECT_NAME];
  if (composeFiles.some((file) => existsSync(file))) {
    return [path.basename(process.cwd()).toLowerCase().replace(/[^a-z0-9_-]/g, "")];
  }
  throw new UsageError("no project named: set PROJECT=<compose project>, list projects in composure.yml, or run from the folder of a compose file");
}

/** The one project a command that acts on a single run works on: PROJECT=, else the only one configured. */
export function oneProject(config: Config, command: string): string {
  const projects = projectsToUse(config);
  if (projects.length !== 1) throw new UsageError(`make ${command} acts on one project at a time: set PROJECT= to one of ${projects.join(", ")}`);
  return projects[0];
}

export async function prepareEngine(config: Config): Promise<string> {
  await checkEngine();
  return ensureHelperImage(process.env.COMPOSURE_HELPER_IMAGE || config.helper_image || defaultHelperImage);
}

// The node_exporter textfile `<textfile_dir>/composure-<project>.prom`, rebuilt from the catalog
// on disk (the newest manifests and their upload.json) and the project's status file at the end
// of every backup, verify and sync invocation, success or not, and by `make metrics`. Written to a temporary name that
// node_exporter ignores (it reads *.prom only), then renamed over the old file.
import { existsSync } from "node:fs";
import { mkdir, readdir, rename, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { readManifest, type Manifest } from "../catalog/manifest.ts";
import { isSuspect } from "../catalog/fact-trends.ts";
import { readAccepted } from "../catalog/run-marks.ts";
import { readUploadState, type UploadState } from "../catalog/upload-state.ts";
import { isRescueRun, listRunDirs } from "../catalog/runs.ts";
import type { Config, Tier } from "../config/schema.ts";
import { messageOf } from "../errors.ts";
import { log } from "../log.ts";
import { repositoryOf } from "../store/restic.ts";
import { buildRegistry, renderRegistry, type ProjectState, type ServiceState } from "./registry.ts";
import { readStatus, updateStatus, type CheckKind, type CheckResult, type ProjectStatus } from "./status.ts";

export const defaultTier: Tier = "medium";

export function textfilePath(directory: string, project: string): string {
  return path.join(directory, `composure-${project}.prom`);
}

/** One complete run as the catalog holds it: its manifest and, once it was copied off-site, the upload's outcome. */
export interface CatalogRun {
  manifest: Manifest;
  upload?: UploadState;
  /** Services whose suspected losses in this run were accepted (make accept). */
  accepted?: string[];
}

/** The complete runs of the project (rescue copies left out), newest first; unreadable manifests are skipped. */
async function readCatalog(destination: string, project: string): Promise<CatalogRun[]> {
  const runs: CatalogRun[] = [];
  for (const run of await listRunDirs(destination, project)) {
    if (!run.complete || isRescueRun(run.id)) continue;
    try {
      runs.push({ manifest: await readManifest(run.dir, project), upload: await readUploadState(run.dir), accepted: await readAccepted(run.dir) });
    } catch (error) {
      log.warn(`metrics: skipping run ${run.id}: ${messageOf(error)}`);
    }
  }
  return runs;
}

/** The newest upload attempt of any run (upload or sync), as the last off-site copy's result. */
function lastUpload(runs: CatalogRun[]): Record<string, CheckResult> {
  let newest: { upload: UploadState; run: string } | undefined;
  for (const { manifest, upload } of runs) {
    if (upload && (!newest || Date.parse(upload.at) > Date.parse(newest.upload.at))) newest = { upload, run: manifest.runId };
  }
  return newest ? { remote: { ok: newest.upload.state === "uploaded", at: newest.upload.at, run: newest.run } } : {};
}

/** A project's state from its catalog and status file: what the textfile says. */
export function deriveProjectState(project: string, runs: CatalogRun[], status: ProjectStatus, config: Pick<Config, "services">): ProjectState {

  const services = new Map<string, ServiceState>();
  // the tier the last plan resolved (labels included), else the newest manifest's, else composure.yml's, else medium
  const recordedTier = new Map<string, Tier>();
  for (const { manifest } of [...runs].reverse()) {
    for (const record of manifest.services) {
      if (record.tier) recordedTier.set(record.name, record.tier);
    }
  }
  const tierOf = (name: string): Tier => status.services[name]?.tier ?? recordedTier.get(name) ?? config.services[name]?.tier ?? defaultTier;
  const excluded = (name: string) => status.services[name]?.excluded ?? config.services[name]?.exclude ?? false;
  const entryOf = (name: string): ServiceState => {
    let entry = services.get(name);
    if (!entry) services.set(name, (entry = { service: name, tier: tierOf(name), localBackups: 0 }));
    return entry;
  };
  for (const name of Object.keys(status.services)) entryOf(name);
  for (const { manifest, accepted } of runs) {
    const at = Date.parse(manifest.finishedAt) / 1000;
    for (const record of manifest.services) {
      const entry = entryOf(record.name);
      const ok = record.status === "ok";
      // manifests come newest first: the first one seen is the service's last run
      entry.lastRun ??= { at, ok, durationSeconds: record.durationSeconds, downtimeSeconds: record.downtimeSeconds };
      if (!ok) continue;
      entry.localBackups += 1;
      entry.lastSuccess ??= {
        at,
        bytes: record.artifacts.reduce((sum, artifact) => sum + artifact.bytes, 0),
        addedBytes: record.artifacts.reduce((sum, artifact) => sum + (artifact.repository ? artifact.repository.addedBytes : artifact.bytes), 0),
        suspect: isSuspect(record) && !accepted?.includes(record.name),
        largestDrop: record.trend?.largestDrop,
      };
    }
  }
  for (const entry of services.values()) {
    entry.verify = status.checks.verify[entry.service];
    entry.restoreDrill = status.checks.restore_drill[entry.service];
  }
  return {
    project,
    services: [...services.values()].filter((entry) => !excluded(entry.service)),
    uploads: lastUpload(runs),
    invocations: status.invocations,
  };
}

/** Rebuilds the project's textfile from disk; returns its path. */
export async function writeProjectMetrics(config: Config, project: string): Promise<string> {
  const [runs, status] = await Promise.all([readCatalog(config.destination, project), readStatus(config.destination, project)]);
  const state = { ...deriveProjectState(project, runs, status, config), repositoryBytes: await diskUsage(repositoryOf(config, project).path) };
  const text = await renderRegistry(buildRegistry(state));
  const directory = config.metrics.textfile_dir;
  await mkdir(directory, { recursive: true });
  const target = textfilePath(directory, project);
  const temporary = `${target}.${process.pid}.tmp`;
  try {
    await writeFile(temporary, text, { mode: 0o644 });
    await rename(temporary, target);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
  return target;
}

export interface PlannedTier {
  name: string;
  tier?: Tier;
  excluded: boolean;
}

export interface InvocationRecord {
  command: "backup" | "verify" | "sync" | "prune";
  ok: boolean;
  /** Services as this invocation's plan resolved them (tier, exclusion), remembered for later rewrites. */
  planned?: PlannedTier[];
  /** Per-service check results (verify, restore drill) of this invocation. */
  checks?: { kind: CheckKind; results: Record<string, CheckResult> };
}

/**
 * Records an invocation's outcome in the status file and rewrites the textfile. Never throws:
 * metrics must not change what a backup or verify reports; a failure is logged.
 */
export async function recordInvocation(config: Config, project: string, invocation: InvocationRecord): Promise<void> {
  try {
    const at = new Date().toISOString();
    await updateStatus(config.destination, project, (status) => {
      status.invocations[invocation.command] = { ok: invocation.ok, at };
      for (const planned of invocation.planned ?? []) status.services[planned.name] = { tier: planned.tier ?? defaultTier, excluded: planned.excluded };
      if (invocation.checks) Object.assign(status.checks[invocation.checks.kind], invocation.checks.results);
    });
  } catch (error) {
    return void log.error(`metrics: could not record the ${invocation.command} of project ${project}: ${messageOf(error)}`);
  }
  await refreshMetrics(config, project, invocation.command);
}

/** Rewrites the textfile from the catalog. Never throws: metrics must not change a command's result; a failure is logged. */
export async function refreshMetrics(config: Config, project: string, cause = "changes"): Promise<void> {
  try {
    log.info(`metrics: wrote ${await writeProjectMetrics(config, project)}`);
  } catch (error) {
    log.error(`metrics: could not record the ${cause} of project ${project}: ${messageOf(error)}`);
  }
}


/** Per-service verify results from make verify's findings: a service is good when all its artifacts are. */
export function checksFromFindings(findings: readonly { service?: string; run: string; ok: boolean }[], at = new Date().toISOString()): Record<string, CheckResult> {
  const results: Record<string, CheckResult> = {};
  for (const finding of findings) {
    if (!finding.service) continue;
    const previous = results[finding.service];
    results[finding.service] = { ok: (previous?.ok ?? true) && finding.ok, at, run: previous?.run ?? finding.run };
  }
  return results;
}

/** Bytes of the files under `dir` (undefined when it does not exist): a repository is a few thousand pack files, not millions. */
async function diskUsage(dir: string): Promise<number | undefined> {
  if (!existsSync(dir)) return undefined;
  let bytes = 0;
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) bytes += (await stat(path.join(entry.parentPath, entry.name))).size;
  }
  return bytes;
}

// Run ids and the runs of a project in the local destination.
import { existsSync } from "node:fs";
import { mkdir, readdir } from "node:fs/promises";
import path from "node:path";
import { didYouMean } from "../config/did-you-mean.ts";
import { UsageError } from "../errors.ts";
import { manifestFile, readManifest, type Manifest, type ServiceRecord } from "./manifest.ts";

/** Sortable UTC id such as 20261122T013005Z (with -2, -3 ... if taken within the same second). */
export function formatRunId(date: Date): string {
  return date.toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
}

export function projectDir(destination: string, project: string): string {
  return path.join(destination, project);
}

/** Creates a fresh run directory (mode 0700) and returns its id and path. */
export async function createRunDir(destination: string, project: string, now: Date, suffix = ""): Promise<{ runId: string; runDir: string }> {
  await mkdir(projectDir(destination, project), { recursive: true, mode: 0o700 });
  const base = `${formatRunId(now)}${suffix}`;
  for (let attempt = 1; ; attempt++) {
    const runId = attempt === 1 ? base : `${base}-${attempt}`;
    const runDir = path.join(projectDir(destination, project), runId);
    try {
      await mkdir(runDir, { mode: 0o700 });
      return { runId, runDir };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
  }
}

/** Rescue runs (copies taken before a restore) are restorable by id, never picked as "latest". */
export const isRescueRun = (id: string) => id.endsWith("-rescue");

export interface RunEntry {
  id: string;
  dir: string;
  complete: boolean;
}

/** Every run directory of a project, newest first; complete = has a manifest. */
export async function listRunDirs(destination: string, project: string): Promise<RunEntry[]> {
  const dir = projectDir(destination, project);
  if (!existsSync(dir)) return [];
  const entries = await readdir(dir, { withFileTypes: true });
  return entries
    .filter((entry) => entry.isDirectory() && /^\d{8}T\d{6}Z/.test(entry.name))
    .map((entry) => ({ id: entry.name, dir: path.join(dir, entry.name), complete: existsSync(path.join(dir, entry.name, manifestFile)) }))
    .sort((a, b) => b.id.localeCompare(a.id));
}

export async function listCompleteRuns(destination: string, project: string): Promise<{ manifest: Manifest; dir: string }[]> {
  const runs = (await listRunDirs(destination, project)).filter((run) => run.complete);
  return Promise.all(runs.map(async (run) => ({ manifest: await readManifest(run.dir, project), dir: run.dir })));
}

/**
 * Finds the run named by RUN=: "latest" is the newest complete run (that has `service`, when
 * given, backed up successfully); otherwise an exact id.
 */
export async function findRun(destination: string, project: string, selector: string, service?: string): Promise<{ manifest: Manifest; dir: string }> {
  const runs = await listRunDirs(destination, project);
  if (selector === "latest") {
    for (const run of runs.filter((entry) => entry.complete && !isRescueRun(entry.id))) {
      const manifest = await readManifest(run.dir, project);
      if (!service || manifest.services.some((record) => record.name === service && record.status === "ok")) return { manifest, dir: run.dir };
    }
    const complete = runs.filter((entry) => entry.complete && !isRescueRun(entry.id));
    if (service && complete.length > 0) {
      const names = [...new Set((await readManifest(complete[0].dir, project)).services.map((record) => record.name))];
      throw new UsageError(`no complete run of project ${project} has a backup of service ${service}${didYouMean(service, names)} (the newest run has: ${names.join(", ")})`);
    }
    throw new UsageError(`no complete run of project ${project} in ${projectDir(destination, project)}: run 'make backup' first, or check PROJECT= and DESTINATION=`);
  }
  const run = runs.find((entry) => entry.id === selector);
  if (!run) {
    const known = runs.filter((entry) => entry.complete).slice(0, 5).map((entry) => entry.id);
    throw new UsageError(`run ${selector} of project ${project} not found${known.length ? ` (newest: ${known.join(", ")}; see 'make list')` : ""}`);
  }
  return { manifest: await readManifest(run.dir, project), dir: run.dir };
}

/**
 * Each named service's record in the newest complete run that backed it up (rescue copies left
 * out, unreadable manifests skipped): what a new backup's facts are compared with.
 */
export async function lastGoodRecords(destination: string, project: string, services: string[]): Promise<Map<string, { runId: string; record: ServiceRecord }>> {
  const found = new Map<string, { runId: string; record: ServiceRecord }>();
  for (const run of await listRunDirs(destination, project)) {
    if (found.size === services.length) break;
    if (!run.complete || isRescueRun(run.id)) continue;
    const manifest = await readManifest(run.dir, project).catch(() => undefined);
    for (const record of manifest?.services ?? []) {
      if (record.status === "ok" && services.includes(record.name) && !found.has(record.name)) found.set(record.name, { runId: run.id, record });
    }
  }
  return found;
}

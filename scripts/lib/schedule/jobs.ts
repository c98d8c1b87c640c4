// The unattended jobs, from `schedule:` in composure.yml: one backup per tier (TIER=), verify,
// prune and sync. Both `make cron-install` and `make schedule` run exactly these. A job whose
// script this checkout does not have yet (prune, sync before they exist) is left out with a note.
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { tiers, type Schedule } from "../config/schema.ts";
import { repoRoot } from "../checkout.ts";


/** Bundled (dist/<name>.mjs, what `make` runs) or the TypeScript sources through tsx. */
const runningBundled = import.meta.url.endsWith(".mjs");

/** node's arguments that run `make <target>`'s script, the same way this process was started. */
export function nodeArgumentsOf(target: string, root = repoRoot): string[] {
  return runningBundled ? [path.join(root, "dist", `${target}.mjs`)] : ["--import", "tsx", scriptOf(target, root)];
}

export interface Job {
  /** backup-critical, backup-medium, backup-low, verify, prune, sync */
  name: string;
  /** The key under `schedule:` it comes from. */
  key: keyof Schedule;
  expression: string;
  /** make target and scripts/<target>.ts */
  target: string;
  /** make variables / environment for the run, e.g. TIER=critical */
  variables: Record<string, string>;
}

export interface JobList {
  jobs: Job[];
  /** Jobs turned off (false) or whose target does not exist, with the reason. */
  skipped: { name: string; reason: string }[];
}

export function scriptOf(target: string, root = repoRoot): string {
  return path.join(root, "scripts", `${target}.ts`);
}

/** The checkout has `make <target>`: its script and its Makefile rule. */
export function hasMakeTarget(target: string, root = repoRoot): boolean {
  if (!existsSync(scriptOf(target, root))) return false;
  try {
    return new RegExp(`^${target}:`, "m").test(readFileSync(path.join(root, "Makefile"), "utf8"));
  } catch {
    return false;
  }
}

/**
 * The jobs to run. `remoteConfigured`: sync only makes sense with a remote (without one it
 * would fail every time), so it is left out otherwise.
 */
export function listJobs(schedule: Schedule, hasTarget: (target: string) => boolean = hasMakeTarget, remoteConfigured = false): JobList {
  const candidates: Omit<Job, "expression">[] = [
    ...tiers.map((tier) => ({ name: `backup-${tier}`, key: tier, target: "backup", variables: { TIER: tier } })),
    { name: "verify", key: "verify", target: "verify", variables: { RUN: "latest" } },
    { name: "drill", key: "drill", target: "verify", variables: { RUN: "latest", DEEP: "1" } },
    { name: "prune", key: "prune", target: "prune", variables: {} },
    { name: "sync", key: "sync", target: "sync", variables: {} },
  ];
  const result: JobList = { jobs: [], skipped: [] };
  for (const candidate of candidates) {
    const expression = schedule[candidate.key];
    if (expression === false) result.skipped.push({ name: candidate.name, reason: `schedule.${candidate.key} is false` });
    else if (!hasTarget(candidate.target)) result.skipped.push({ name: candidate.name, reason: `this composure has no 'make ${candidate.target}' yet` });
    else if (candidate.target === "sync" && !remoteConfigured) result.skipped.push({ name: candidate.name, reason: "no remote: in composure.yml" });
    else result.jobs.push({ ...candidate, expression: expression.trim() });
  }
  return result;
}

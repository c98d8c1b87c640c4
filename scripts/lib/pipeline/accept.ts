// make accept RUN=<id> | SERVICE=<name>: an operator says a suspected data loss (fact trends) was
// meant, so retention no longer keeps the run from before it. Recorded in the run's accepted.json
// (the sealed manifest is never rewritten) and copied beside the run's off-site copy.
import { describeLoss, isSuspect } from "../catalog/fact-trends.ts";
import type { ServiceRecord } from "../catalog/manifest.ts";
import { readAccepted, recordAccepted } from "../catalog/run-marks.ts";
import { findRun, isRescueRun, listCompleteRuns, projectDir } from "../catalog/runs.ts";
import { readUploadState } from "../catalog/upload-state.ts";
import type { Config } from "../config/schema.ts";
import { UsageError, messageOf } from "../errors.ts";
import { log } from "../log.ts";
import { acquireLock } from "./lock.ts";
import { remoteFrom, uploadAccepted } from "./offsite.ts";

/** A suspect service record of a run that nobody accepted yet. */
export interface PendingSuspicion {
  run: string;
  dir: string;
  record: ServiceRecord;
}

/** Every suspicion waiting for an operator, newest run first. */
export async function pendingSuspicions(destination: string, project: string): Promise<PendingSuspicion[]> {
  const pending: PendingSuspicion[] = [];
  for (const { manifest, dir } of await listCompleteRuns(destination, project)) {
    if (isRescueRun(manifest.runId)) continue;
    const accepted = await readAccepted(dir);
    for (const record of manifest.services) {
      if (record.status === "ok" && isSuspect(record) && !accepted.includes(record.name)) pending.push({ run: manifest.runId, dir, record });
    }
  }
  return pending;
}

const describe = (entry: PendingSuspicion) => `run ${entry.run} service ${entry.record.name}: ${entry.record.suspect!.map(describeLoss).join("; ")}`;

/** What RUN= and SERVICE= select among the pending suspicions; a selection of nothing says what there is. */
async function choose(config: Config, project: string, run: string | undefined, service: string | undefined): Promise<PendingSuspicion[]> {
  const pending = await pendingSuspicions(config.destination, project);
  const waiting = pending.length ? `; waiting: ${pending.map(describe).join(" | ")}` : "; no suspected loss is waiting";
  if (!run && !service) throw new UsageError(`say which suspected loss to accept: RUN=<id> (every service of that run) or SERVICE=<name> (every run of that service), or both${waiting}`);
  if (run) await findRun(config.destination, project, run); // an unknown run: say so, with the newest ids
  const chosen = pending.filter((entry) => (!run || entry.run === run) && (!service || entry.record.name === service));
  if (chosen.length === 0) throw new UsageError(`nothing to accept in project ${project} for${run ? ` RUN=${run}` : ""}${service ? ` SERVICE=${service}` : ""}${waiting}`);
  return chosen;
}

export async function acceptSuspicions(config: Config, project: string, run: string | undefined, service: string | undefined): Promise<PendingSuspicion[]> {
  const unlock = await acquireLock(projectDir(config.destination, project), "accept", config.lock.timeout_seconds);
  try {
    const chosen = await choose(config, project, run, service);
    for (const dir of new Set(chosen.map((entry) => entry.dir))) {
      await recordAccepted(dir, chosen.filter((entry) => entry.dir === dir).map((entry) => entry.record.name));
      await copyOffsite(config, project, dir);
    }
    for (const entry of chosen) log.info(`accepted: ${describe(entry)}`);
    return chosen;
  } finally {
    await unlock();
  }
}

/** The acceptance goes beside the run's remote copy; when that fails, this host's copy still counts for make prune. */
async function copyOffsite(config: Config, project: string, runDir: string): Promise<void> {
  const remote = remoteFrom(config);
  if (!remote || (await readUploadState(runDir))?.state !== "uploaded") return; // make sync takes accepted.json along later
  try {
    await uploadAccepted(remote, project, runDir);
  } catch (error) {
    log.warn(`the acceptance is recorded here, but copying it to ${remote.description} failed: ${messageOf(error)} (make prune FROM=remote on this host still reads it)`);
  }
}

// make prune: grandfather-father-son retention, decided by the pure decideRetention per tier
// and location; a run is kept when any tier present in it keeps it. Local and remote are pruned
// separately, each by its own policy: deleting a local run never touches its off-site copy.
import { existsSync } from "node:fs";
import { rm } from "node:fs/promises";
import path from "node:path";
import { log } from "../log.ts";
import { forgetAndPrune, projectSnapshots } from "../store/repository.ts";
import { remoteRepositoryOf, repositoryOf, type Repository } from "../store/restic.ts";
import { readManifest, type Manifest } from "../catalog/manifest.ts";
import { decideRetention, type RetentionDecision, type RetentionPolicy, type RunFacts } from "../catalog/retention.ts";
import { isSuspect } from "../catalog/fact-trends.ts";
import { acceptedFile, readAccepted, readVerified } from "../catalog/run-marks.ts";
import { listRunDirs, projectDir } from "../catalog/runs.ts";
import { pinReasons } from "../catalog/pins.ts";
import { tiers, type Config, type Tier } from "../config/schema.ts";
import type { Remote } from "../remote/types.ts";
import { failpoint } from "../lifecycle/failpoint.ts";
import { listRemoteRunFiles, readRemoteAccepted, readRemoteManifest } from "./offsite.ts";

export type Location = "local" | "remote";

interface RunWithManifest {
  id: string;
  startedAt: Date;
  manifest?: Manifest;
  /** Services whose suspected losses in this run an operator accepted (make accept). */
  accepted?: string[];
  /** Services whose artifacts in this run passed make verify. */
  verified?: string[];
  /** make pin, or a tag of retention.pin_tags: no policy deletes it. */
  pinned?: boolean;
}

/** "20261122T013005Z" (and suffixed ids) -> the time it names. */
export function startOfRunId(id: string): Date {
  const match = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z/.exec(id);
  return match ? new Date(`${match[1]}-${match[2]}-${match[3]}T${match[4]}:${match[5]}:${match[6]}Z`) : new Date(Number.NaN);
}

function policyFor(config: Config, location: Location, tier: Tier): RetentionPolicy {
  return config.retention.tiers?.[tier]?.[location] ?? config.retention[location] ?? {};
}

/** One decision per run: kept if any tier keeps it, with every reason. */
export function decide(config: Config, location: Location, runs: RunWithManifest[], now: Date): RetentionDecision[] {
  const verdicts = new Map<string, RetentionDecision>(runs.map((run) => [run.id, { id: run.id, keep: false, reasons: [] }]));
  for (const tier of tiers) {
    const facts: RunFacts[] = runs
      .filter((run) => !run.manifest || run.manifest.services.some((service) => (service.tier ?? "medium") === tier))
      .map((run) => {
        const good = run.manifest?.services.filter((service) => service.status === "ok" && (service.tier ?? "medium") === tier) ?? [];
        const suspect = good.filter((service) => isSuspect(service) && !run.accepted?.includes(service.name));
        return {
          id: run.id,
          startedAt: run.startedAt,
          complete: Boolean(run.manifest),
          services: good.map((service) => service.name),
          suspect: Object.fromEntries(suspect.map((service) => [service.name, service.suspect!.map((loss) => loss.what)])),
          verified: run.verified,
          pinned: run.pinned,
        };
      });
    if (facts.length === 0) continue;
    const options = { incompleteGraceHours: config.retention.incomplete_grace_hours, requireVerified: config.retention.require_verified };
    for (const decision of decideRetention(facts, policyFor(config, location, tier), now, options)) {
      const verdict = verdicts.get(decision.id)!;
      verdict.keep ||= decision.keep;
      verdict.reasons.push(...decision.reasons.map((reason) => `${tier}: ${reason}`));
    }
  }
  return [...verdicts.values()].sort((a, b) => b.id.localeCompare(a.id));
}

const isPinned = (config: Config, runDir: string, manifest: Manifest | undefined) => pinReasons(runDir, manifest, config.retention.pin_tags).length > 0;

export async function pruneLocal(config: Config, project: string, dryRun: boolean, now = new Date()): Promise<RetentionDecision[]> {
  const dirs = await listRunDirs(config.destination, project);
  const runs = await Promise.all(
    dirs.map(async (run) => {
      const manifest = run.complete ? await readManifest(run.dir, project) : undefined;
      return { id: run.id, startedAt: startOfRunId(run.id), manifest, dir: run.dir, pinned: isPinned(config, run.dir, manifest), ...(await marksOf(run.dir)) };
    }),
  );
  const decisions = decide(config, "local", runs, now);
  await failpoint("prune:delete");
  if (!dryRun) {
    for (const decision of decisions.filter((entry) => !entry.keep)) await rm(runs.find((run) => run.id === decision.id)!.dir, { recursive: true, force: true });
  }
  const kept = runs.filter((run) => run.manifest && decisions.find((decision) => decision.id === run.id)?.keep).map((run) => run.manifest!);
  await dropUnreferencedSnapshots(repositoryOf(config, project), kept, dryRun);
  return decisions;
}

/**
 * The repository engine's side of a prune: every snapshot of the project that no kept complete
 * manifest refers to (those of deleted runs, and those a killed run left) is forgotten, then
 * `restic prune` frees their data. The project lock keeps any backup from running meanwhile.
 */
async function dropUnreferencedSnapshots(repository: Repository, kept: Manifest[], dryRun: boolean, beforeDeleting?: () => Promise<void>): Promise<void> {
  if (!repository.path.startsWith("rclone:") && !existsSync(path.join(repository.path, "config"))) return;
  const referenced = new Set(kept.flatMap((manifest) => manifest.services.flatMap((service) => service.artifacts.flatMap((artifact) => (artifact.repository ? [artifact.repository.snapshot] : [])))));
  const garbage = [...(await projectSnapshots(repository)).keys()].filter((id) => !referenced.has(id));
  if (garbage.length === 0) return;
  if (dryRun) return void log.info(`repository ${repository.path}: would forget ${garbage.length} snapshot(s) no kept run refers to, then prune`);
  await beforeDeleting?.();
  await forgetAndPrune(repository, garbage);
  log.info(`repository ${repository.path}: forgot ${garbage.length} snapshot(s) no kept run refers to, and pruned their data`);
}

/** What was learned about a run after it was sealed: acceptances and verify results of this copy. */
async function marksOf(runDir: string): Promise<Pick<RunWithManifest, "accepted" | "verified">> {
  return { accepted: await readAccepted(runDir), verified: await readVerified(runDir) };
}

/**
 * A remote run's marks: acceptances made here or off-site; verify results of the local copy (the
 * remote copy was checked against the same manifest when it was uploaded).
 */
async function remoteMarksOf(config: Config, remote: Remote, project: string, id: string, files: Set<string>): Promise<Pick<RunWithManifest, "accepted" | "verified">> {
  const local = await marksOf(path.join(projectDir(config.destination, project), id));
  const offsite = files.has(acceptedFile) ? await readRemoteAccepted(remote, project, id) : [];
  return { accepted: [...new Set([...local.accepted!, ...offsite])], verified: local.verified };
}

/** The empty file the remote prune makes and removes to learn whether it may delete (left behind when it may not). */
export const removalCheckFile = ".composure-removal-check";

export async function pruneRemote(config: Config, remote: Remote, project: string, dryRun: boolean, now = new Date()): Promise<RetentionDecision[]> {
  const listing = await listRemoteRunFiles(remote, project);
  const runs = await Promise.all(
    [...listing].map(async ([id, files]) => {
      const manifest = await readRemoteManifest(remote, project, id);
      // A pin is kept beside the local copy of the run: it holds for the remote copy too.
      return { id, startedAt: startOfRunId(id), manifest, pinned: isPinned(config, path.join(projectDir(config.destination, project), id), manifest), ...(await remoteMarksOf(config, remote, project, id, files)) };
    }),
  );
  const decisions = decide(config, "remote", runs, now);
  if (!dryRun) {
    for (const decision of decisions.filter((entry) => !entry.keep)) await remote.removeDir(`${project}/${decision.id}`);
  }
  const kept = runs.filter((run) => decisions.find((decision) => decision.id === run.id)?.keep).map((run) => run.manifest);
  if ((await remote.list(`${project}/.repository/keys`)).length > 0) {
    // restic would retry a refused delete for 15 minutes: an append-only remote is found out first.
    await dropUnreferencedSnapshots(remoteRepositoryOf(config, project), kept, dryRun, () => remote.checkRemoval(`${project}/${removalCheckFile}`));
  }
  return decisions;
}

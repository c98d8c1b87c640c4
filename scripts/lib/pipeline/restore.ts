// make restore: pick the run, show what will be stopped and replaced, ask (or require FORCE=1
// without a TTY), then restore each chosen service with its strategy, dependencies first, keeping
// a rescue run of the data being replaced so a mistaken restore can itself be undone. One
// service's failure is its own: the others are still restored, and the summary says which failed.
import os from "node:os";
import path from "node:path";
import { mkdir } from "node:fs/promises";
import { writeManifest, type Artifact, type Manifest, type ServiceRecord } from "../catalog/manifest.ts";
import { createRunDir, findRun, projectDir } from "../catalog/runs.ts";
import { dependenciesFirst, discoverProject, type ProjectInfo } from "../compose/discover.ts";
import { didYouMean } from "../config/did-you-mean.ts";
import { resolveServiceSettings } from "../config/load.ts";
import type { Config, ServiceSettings } from "../config/schema.ts";
import { removeLeftoverHelpers } from "../docker/helper.ts";
import { ExitCode, exitCodeOf, RefusedError, UsageError } from "../errors.ts";
import { log } from "../log.ts";
import { detectStrategy, getStrategy, journalRecovery, strategyKinds } from "../strategies/registry.ts";
import { createRunScope, type RescueSink, type RestoreContext } from "../strategies/types.ts";
import { archiveStore } from "../store/archive.ts";
import { openRunReader } from "../store/read.ts";
import { repositoryOf } from "../store/restic.ts";
import { StopJournal } from "../lifecycle/journal.ts";
import { acquireLock } from "./lock.ts";
import { openPrompt } from "./restore-choice.ts";
import { failureOf, summaryLines, type ServiceResult } from "./restore-report.ts";

export interface RestoreRequest {
  project: string;
  /** INTO=: restore into this project instead (a migration, or a copy next to the original); its containers must exist. */
  into?: string;
  run: string;
  /** SERVICE=, or the services picked on a terminal; undefined: every service of the run. */
  services?: string[];
  volume?: string;
  dryRun: boolean;
  force: boolean;
  rescue: boolean;
  /** A person answers on a terminal: the plan is confirmed by typing yes (otherwise FORCE=1 is needed). */
  interactive: boolean;
  /** CONFLICT=: the policy for existing data, for strategies that offer one (elasticsearch). */
  conflict?: string;
  /** CLEAN=1: what the backup left out (exclude_paths) is removed from the live volumes too. */
  clean?: boolean;
  /** RESTORE_SECRETS=1: secret_paths are restored from the backup instead of kept. */
  restoreSecrets?: boolean;
}

/** Per service in restore order: what was done (or, with DRY_RUN=1, would be done), or why not. */
export interface RestoreOutcome {
  runId: string;
  services: ServiceResult[];
  /** The services that failed: a restore with any of them exits 1. */
  failed: string[];
}

/** The run, the services in restore order, and how each service's restore context is made. */
interface RestorePlan {
  manifest: Manifest;
  target: string;
  project: ProjectInfo;
  records: ServiceRecord[];
  journal: StopJournal;
  contextFor: (record: ServiceRecord, dryRun: boolean, rescue?: RescueSink) => RestoreContext<unknown>;
}

/**
 * Every chosen service is restored even when an earlier one failed (each failure is logged with
 * what to do next); a real restore ends with a summary table. The preview always runs first: it
 * is the plan a person confirms, so a service whose preview fails is left out of the real restore.
 */
export async function runRestore(config: Config, helperImage: string, request: RestoreRequest): Promise<RestoreOutcome> {
  const plan = await planRestore(config, helperImage, request);
  const preview = await restoreAll(plan, request, (record) => plan.contextFor(record, true, request.rescue ? noRescue : undefined));
  if (request.dryRun) return outcomeOf(plan.manifest.runId, preview);
  await confirm(plan.manifest, preview, request);
  return restoreLocked(config, helperImage, request, plan, preview);
}

async function planRestore(config: Config, helperImage: string, request: RestoreRequest): Promise<RestorePlan> {
  const { manifest, dir } = await findRun(config.destination, request.project, request.run, request.services?.length === 1 ? request.services[0] : undefined);
  const target = request.into ?? request.project;
  const project = await discoverProject(target);
  const chosen = chooseServices(manifest, request);
  if (target !== request.project) requireTargetServices(project, chosen, request.project);
  const records = dependenciesFirst(project, chosen.map((record) => record.name)).map((name) => chosen.find((record) => record.name === name)!);
  const journal = new StopJournal(projectDir(config.destination, target));
  // What the strategies share across the services of this restore, preview and real restore alike
  // (a cluster restored once, a look at it the preview took): dropped when the command ends.
  const scope = createRunScope();
  const reader = await openRunReader(dir, chosen.flatMap((record) => record.artifacts), repositoryOf(config, request.project));
  const contextFor: RestorePlan["contextFor"] = (record, dryRun, rescue) => ({
    config,
    project,
    sourceProject: request.project,
    ...currentSettings(config, project, record),
    helperImage,
    journal,
    scope,
    service: project.services.find((service) => service.name === record.name),
    serviceName: record.name,
    record,
    runDir: dir,
    volume: request.volume,
    rescue,
    dryRun,
    conflict: request.conflict,
    clean: request.clean,
    restoreSecrets: request.restoreSecrets,
    reader,
  });
  return { manifest, target, project, records, journal, contextFor };
}

async function restoreLocked(config: Config, helperImage: string, request: RestoreRequest, plan: RestorePlan, preview: ServiceResult[]): Promise<RestoreOutcome> {
  const { manifest, target } = plan;
  const unlock = await acquireLock(projectDir(config.destination, target), "restore", config.lock.timeout_seconds);
  try {
    await plan.journal.recover(journalRecovery(helperImage, target));
    await removeLeftoverHelpers(target);
    const rescue = request.rescue ? createRescueSink(config, plan.project, manifest) : undefined;
    const done = await restoreAll(plan, request, (record) => plan.contextFor(record, false, rescue?.sink), preview);
    // restoreAll never throws for one service: the rescue copies taken before a failure stay restorable.
    for (const line of (await rescue?.seal()) ?? []) log.info(line);
    for (const line of summaryLines(manifest.runId, target, done)) log.info(line);
    return outcomeOf(manifest.runId, done);
  } finally {
    await unlock();
  }
}

function outcomeOf(runId: string, services: ServiceResult[]): RestoreOutcome {
  return { runId, services, failed: services.filter((result) => result.result === "failed").map((result) => result.name) };
}

/**
 * The service's settings as its labels and composure.yml give them now, and its strategy options
 * when the service still uses the strategy of the record (a restore reads e.g. credentials or
 * parallelism from them); otherwise none.
 */
export function currentSettings(config: Config, project: ProjectInfo, record: ServiceRecord): { settings: ServiceSettings; options: unknown } {
  const service = project.services.find((candidate) => candidate.name === record.name);
  const settings = service ? resolveServiceSettings(config, service, strategyKinds).settings : (config.services[record.name] ?? {});
  const kind = settings.strategy ?? (service ? detectStrategy(service) : undefined);
  // Parsed even when empty: the strategy's defaults (a port, a path) apply.
  const schema = getStrategy(record.strategy).options;
  const parsed = kind === record.strategy ? schema.safeParse(settings.options ?? {}) : undefined;
  if (parsed?.success) return { settings, options: parsed.data };
  const defaults = schema.safeParse({});
  return { settings, options: defaults.success ? defaults.data : {} };
}

/** Restoring into another project writes only into its own containers and volumes: they must exist. */
function requireTargetServices(project: ProjectInfo, records: ServiceRecord[], source: string): void {
  const missing = records.filter((record) => !project.services.some((service) => service.name === record.name)).map((record) => record.name);
  if (missing.length === 0) return;
  throw new UsageError(
    `project ${project.name} has no container${missing.length > 1 ? "s" : ""} for ${missing.join(", ")}: create ${project.name}'s stack from the same compose file first ` +
      `(docker compose -p ${project.name} up -d), then restore ${source}'s run into it`,
  );
}

const noRescue: RescueSink = {
  store: () => Promise.reject(new Error("no rescue copies in this restore")),
  add: () => undefined,
};

function chooseServices(manifest: Manifest, request: RestoreRequest): ServiceRecord[] {
  const restorable = manifest.services.filter((record) => record.status === "ok");
  if (!request.services) return restorable;
  return request.services.map((service) => {
    const record = restorable.find((candidate) => candidate.name === service);
    if (!record) {
      const names = restorable.map((candidate) => candidate.name);
      throw new UsageError(`run ${manifest.runId} has no backup of service ${service}${didYouMean(service, names)} (it has: ${names.join(", ") || "none"})`);
    }
    if (request.volume && !record.artifacts.some((artifact) => matchesVolume(artifact, request.volume!))) {
      const volumes = record.artifacts.map((artifact) => artifact.volume?.composeName ?? (artifact.facts?.database as string | undefined) ?? artifact.path);
      throw new UsageError(`service ${service} in run ${manifest.runId} has no volume ${request.volume} (it has: ${volumes.join(", ")})`);
    }
    return record;
  });
}

/** VOLUME= names a volume (docker or compose name), a database of a database strategy, or an index of a snapshot. */
export function matchesVolume(artifact: Artifact, volume: string): boolean {
  const indices = artifact.facts?.indices;
  // facts.selectors: other names an artifact answers to (cassandra: its keyspaces and keyspace.table names).
  const selectors = artifact.facts?.selectors;
  return artifact.volume?.name === volume || artifact.volume?.composeName === volume || artifact.facts?.database === volume || (Array.isArray(indices) && indices.includes(volume)) || (Array.isArray(selectors) && selectors.includes(volume));
}

/**
 * Restores (or previews) each service in turn, each failure contained to its service. A service
 * whose preview failed is not restored: the plan that was confirmed did not include it.
 */
async function restoreAll(plan: RestorePlan, request: RestoreRequest, contextFor: (record: ServiceRecord) => RestoreContext<unknown>, preview?: ServiceResult[]): Promise<ServiceResult[]> {
  const phase: Phase = preview ? "restore" : request.dryRun ? "dry-run" : "plan";
  const results: ServiceResult[] = [];
  for (const record of plan.records) {
    const previewed = preview?.find((result) => result.name === record.name);
    const skipped = previewed?.result === "failed";
    const retry = retryCommand(request, plan.manifest.runId, record.name);
    const result = skipped ? { ...previewed, seconds: 0 } : await restoreService(record, request, () => contextFor(record), retry);
    report(result, phase, skipped);
    results.push(result);
  }
  return results;
}

/** dry-run: DRY_RUN=1; plan: the preview a real restore shows for confirmation; restore: the real thing. */
type Phase = "dry-run" | "plan" | "restore";

/**
 * One service's restore; what goes wrong (its settings included) is its failure alone, except a
 * bad argument (CONFLICT=): that is the whole command's, exit 2, thrown by the preview before
 * anything is touched.
 */
async function restoreService(record: ServiceRecord, request: RestoreRequest, contextFor: () => RestoreContext<unknown>, retry: string): Promise<ServiceResult> {
  const started = performance.now();
  const seconds = () => Math.round(performance.now() - started) / 1000;
  const artifacts = record.artifacts.filter((artifact) => !request.volume || matchesVolume(artifact, request.volume));
  const result = { name: record.name, strategy: record.strategy };
  try {
    const ctx = contextFor();
    const lines = await getStrategy(record.strategy).restore(ctx, artifacts);
    return { ...result, result: ctx.dryRun ? "dry-run" : "ok", lines, seconds: seconds() };
  } catch (error) {
    if (exitCodeOf(error) !== ExitCode.failed) throw error;
    return { ...result, result: "failed", lines: [], ...failureOf(error, retry), seconds: seconds() };
  }
}

/**
 * Logs a result as it comes. Preview lines are not logged (DRY_RUN=1 prints them on stdout, a real
 * restore shows them for confirmation); the plan's failures are logged in their turn of the
 * real restore, so each failure is told once.
 */
function report(result: ServiceResult, phase: Phase, skipped: boolean): void {
  if (phase === "plan") return;
  if (result.result !== "failed") {
    if (phase === "restore") for (const line of result.lines) log.info(`${result.name}: ${line}`);
    return;
  }
  const what = phase === "dry-run" ? "preview failed" : skipped ? "not restored, its preview failed" : "restore failed";
  log.error(`${result.name}: ${what}: ${result.error}`);
  log.error(`${result.name}: ${result.next}`);
}

/** The command that repeats this restore for one service (the run is local by then, even FROM=remote). */
function retryCommand(request: RestoreRequest, runId: string, service: string): string {
  const settings = { PROJECT: request.project, RUN: runId, SERVICE: service, VOLUME: request.volume, INTO: request.into, CONFLICT: request.conflict, CLEAN: request.clean && "1", RESTORE_SECRETS: request.restoreSecrets && "1" };
  const given = Object.entries(settings).filter(([, value]) => value).map(([name, value]) => `${name}=${value}`);
  return ["make restore", ...given, request.dryRun ? "DRY_RUN=1" : "FORCE=1"].join(" ");
}

async function confirm(manifest: Manifest, preview: ServiceResult[], request: RestoreRequest): Promise<void> {
  if (request.force) return;
  const planned = preview.flatMap((result) => (result.result === "failed" ? [`${result.name}: will not be restored, its preview failed: ${result.error}`] : result.lines.map((line) => `${result.name}: ${line}`)));
  const summary = `restore of run ${manifest.runId} (${manifest.startedAt}) of project ${request.project} into project ${request.into ?? request.project}:\n${planned.map((line) => `  ${line}`).join("\n")}`;
  if (!request.interactive) {
    throw new RefusedError(`${summary}\nrestore replaces live data: run it again with FORCE=1 to proceed (DRY_RUN=1 only shows this plan)`);
  }
  const prompt = openPrompt();
  try {
    const answer = await prompt.ask(`${summary}\nType "yes" to proceed: `);
    if (answer.trim().toLowerCase() !== "yes") throw new RefusedError("restore cancelled: nothing was changed");
  } finally {
    prompt.close();
  }
}

/** Rescue copies go into a run of their own, restorable like any other (RUN=<id>). */
function createRescueSink(config: Config, project: ProjectInfo, restored: Manifest) {
  let run: Promise<{ runId: string; runDir: string }> | undefined;
  const startedAt = new Date();
  const records = new Map<string, ServiceRecord>();
  const sink: RescueSink = {
    async store(service) {
      run ??= createRunDir(config.destination, project.name, startedAt, "-rescue");
      const { runDir } = await run;
      const dir = path.join(runDir, service);
      await mkdir(dir, { recursive: true, mode: 0o700 });
      return archiveStore({ runDir, dir, compression: { level: config.compression.level } });
    },
    add(service, artifact, strategy = "volume") {
      const record = records.get(service) ?? { name: service, strategy, status: "ok", stopped: [], downtimeSeconds: 0, durationSeconds: 0, artifacts: [] };
      record.artifacts.push(artifact);
      records.set(service, record);
    },
  };
  const seal = async (): Promise<string[]> => {
    if (!run) return [];
    const { runId, runDir } = await run;
    await writeManifest(runDir, {
      format: "composure/1",
      project: project.name,
      runId,
      host: os.hostname(),
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      outcome: "success",
      reason: `rescue copy taken before restoring run ${restored.runId}`,
      services: [...records.values()],
    });
    return [`rescue copy of the replaced data: run ${runId} (undo with: make restore RUN=${runId} FORCE=1)`];
  };
  return { sink, seal };
}

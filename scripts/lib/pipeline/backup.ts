// One backup run of one project: plan, lock, recover, then every unit of services (units.ts),
// several at once up to `parallelism` (but a stopped service's capture moves bytes alone: see
// StopWindow), the services of a unit in turn (pre hook -> open the strategy's session ->
// capture -> release -> post hook), each failure contained to its service, and finally the
// manifest, written last.
import { mkdir, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { writeManifest, type Artifact, type Manifest, type RunLabels, type ServiceRecord } from "../catalog/manifest.ts";
import { compareFacts, defaultShrinkAlert, describeLoss } from "../catalog/fact-trends.ts";
import { createRunDir, lastGoodRecords, projectDir } from "../catalog/runs.ts";
import { storageEngineOf, type Config } from "../config/schema.ts";
import { execCapture } from "../docker/containers.ts";
import { describeEngineError } from "../docker/engine.ts";
import { removeLeftoverHelpers } from "../docker/helper.ts";
import { messageOf } from "../errors.ts";
import { formatBytes, formatSeconds, log } from "../log.ts";
import { getStrategy, journalRecovery } from "../strategies/registry.ts";
import { createRunScope, SessionOpenError, type BackupContext, type CaptureSession, type RunScope } from "../strategies/types.ts";
import { runStores, type RunStores } from "../store/run-stores.ts";
import { CleanupStack } from "./cleanup.ts";
import { failpoint } from "../lifecycle/failpoint.ts";
import { remoteFrom, uploadRun } from "./offsite.ts";
import { StopJournal } from "../lifecycle/journal.ts";
import { acquireLock } from "./lock.ts";
import type { PlannedService, ProjectPlan } from "./plan.ts";
import { inParallel, startOrder, StopWindow, stopsForCapture, unitsOf } from "./units.ts";

export interface BackupOutcome {
  manifest: Manifest;
  runDir: string;
  /** Set when a remote is configured and the off-site copy failed (the local run is intact). */
  uploadError?: string;
}

export async function runBackup(config: Config, plan: ProjectPlan, helperImage: string, reason?: string, marks: RunLabels = {}): Promise<BackupOutcome> {
  const project = plan.project.name;
  const unlock = await acquireLock(projectDir(config.destination, project), "backup", config.lock.timeout_seconds);
  const cleanup = new CleanupStack();
  const uninstallSignals = cleanup.releaseOnSignals();
  try {
    const journal = new StopJournal(projectDir(config.destination, project));
    await journal.recover(journalRecovery(helperImage, project));
    await removeLeftoverHelpers(project);
    const startedAt = new Date();
    const { runId, runDir } = await createRunDir(config.destination, project, startedAt);
    log.info(`backup of project ${project}: run ${runId}${marks.tags?.length ? ` (tags ${marks.tags.join(", ")})` : ""}`);
    const records: ServiceRecord[] = [];
    // What the strategies share across the services of this run (a cluster's capturer): dropped with the run.
    const scope = createRunScope();
    const stores = runStores(config, project, runDir);
    const state = { runDir, helperImage, journal, cleanup, scope, stores, stopWindow: new StopWindow() };
    // The services' previous good records: their durations order the units, their facts are the trends' baselines.
    const previous = await lastGoodRecords(config.destination, project, plan.services.map((planned) => planned.service.name));
    const units = startOrder(unitsOf(plan), new Map([...previous].map(([name, { record }]) => [name, record.durationSeconds])));
    const parallelism = parallelismOf(config);
    if (units.length > 1 && parallelism > 1) log.info(`${units.length} units, up to ${parallelism} captured at once`);
    const captured = await inParallel(units, parallelism, async (unit) => {
      const done: ServiceRecord[] = [];
      for (const planned of unit) done.push(await backupService(config, plan, planned, state));
      return done;
    });
    const recordOf = new Map(captured.flat().map((record) => [record.name, record]));
    records.push(...plan.services.filter((entry) => !entry.excluded).map((entry) => recordOf.get(entry.service.name)!));
    compareWithPreviousRuns(plan, runId, records, previous);
    const failed = records.filter((record) => record.status === "failed").length;
    const manifest: Manifest = {
      format: "composure/1",
      project,
      runId,
      host: os.hostname(),
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      outcome: failed === 0 ? "success" : failed === records.length ? "failed" : "partial",
      reason,
      ...(marks.tags?.length ? { tags: marks.tags } : {}),
      ...(marks.note ? { note: marks.note } : {}),
      services: records,
    };
    await failpoint("backup:seal");
    await writeManifest(runDir, manifest);
    await failpoint("backup:upload");
    const uploadError = await uploadIfConfigured(config, runDir, manifest);
    log.info(`run ${runId} ${manifest.outcome}: ${records.length - failed} of ${records.length} services backed up in ${runDir}`);
    return { manifest, runDir, uploadError };
  } finally {
    await cleanup.releaseAll();
    uninstallSignals();
    await unlock();
  }
}

/**
 * Fact trends: each good record against the same service's previous good run. A suspect record
 * stays good (the data is what it is); the warning says what fell and what keeps the evidence.
 */
function compareWithPreviousRuns(plan: ProjectPlan, runId: string, records: ServiceRecord[], baselines: Map<string, { runId: string; record: ServiceRecord }>): void {
  const good = records.filter((record) => record.status === "ok");
  for (const record of good) {
    const baseline = baselines.get(record.name);
    const settings = plan.services.find((planned) => planned.service.name === record.name)?.settings;
    const trend = baseline && compareFacts(baseline, record, settings?.shrink_alert ?? defaultShrinkAlert);
    if (!trend) continue;
    record.trend = { baseline: trend.baseline, largestDrop: trend.largestDrop };
    if (trend.losses.length === 0) continue;
    record.suspect = trend.losses;
    log.warn(
      `${record.name}: SUSPECTED DATA LOSS since run ${trend.baseline}: ${trend.losses.map(describeLoss).join("; ")}. ` +
        `The backup is kept as it is; make prune keeps the last good run before it until 'make accept RUN=${runId} SERVICE=${record.name}' (or set shrink_alert for this service)`,
    );
  }
}

/** Copies the sealed run off-site when a remote is configured; a failure is reported, not thrown. */
async function uploadIfConfigured(config: Config, runDir: string, manifest: Manifest): Promise<string | undefined> {
  const remote = remoteFrom(config);
  if (!remote || config.remote?.upload === false || manifest.outcome === "failed") return undefined;
  try {
    await uploadRun(config, remote, runDir, manifest);
    return undefined;
  } catch (error) {
    log.error(`${messageOf(error)} (the local run is intact; 'make sync' uploads it later)`);
    return messageOf(error);
  }
}

interface RunState {
  runDir: string;
  stores: RunStores;
  helperImage: string;
  journal: StopJournal;
  cleanup: CleanupStack;
  scope: RunScope;
  stopWindow: StopWindow;
}

async function backupService(config: Config, plan: ProjectPlan, planned: PlannedService, state: RunState): Promise<ServiceRecord> {
  const started = performance.now();
  const { service, settings } = planned;
  const strategy = getStrategy(planned.strategy);
  const serviceDir = path.join(state.runDir, service.name);
  const record: ServiceRecord = { name: service.name, strategy: strategy.kind, tier: settings.tier ?? "medium", status: "ok", image: service.image, stopped: [], downtimeSeconds: 0, durationSeconds: 0, artifacts: [] };
  const stops = stopsForCapture(planned);
  // Taken before the first await, so that turns follow the plan's order (units.ts StopWindow).
  const turn = state.stopWindow.turn(stops);
  let session: CaptureSession | undefined;
  let facts: Record<string, unknown> | undefined;
  try {
    await mkdir(serviceDir, { mode: 0o700 });
    const ctx: BackupContext<unknown> = {
      config,
      project: plan.project,
      service,
      settings,
      options: strategy.options.parse(settings.options ?? {}),
      helperImage: state.helperImage,
      journal: state.journal,
      scope: state.scope,
      runDir: state.runDir,
      serviceDir,
      store: await state.stores.open(service.name, serviceDir, storageEngineOf(config, settings), !stops),
      mounts: planned.mounts,
    };
    log.info(`${service.name}: capture started (${strategy.kind})`);
    await runHook(planned, "pre");
    await failpoint("backup:prepare");
    await waitLogged(service.name, "to open its session", () => turn.begin());
    const opening = strategy.openSession(ctx);
    // On the stack the moment the session exists; a signal meanwhile waits for it (a stop in progress).
    const release = await state.cleanup.pushWhenReady(
      `release ${service.name}`,
      opening.then((opened) => () => opened.release()),
    );
    session = await opening;
    turn.opened();
    facts = session.facts;
    const opened = session;
    const capture = async () => (await waitLogged(service.name, "to move its bytes", () => turn.clear()), opened.capture());
    record.artifacts = await captureThenRelease(service.name, capture, release);
    turn.end();
    await runHook(planned, "post");
    const bytes = record.artifacts.reduce((sum, artifact) => sum + artifact.bytes, 0);
    log.info(`${service.name}: ${record.artifacts.length} artifact(s), ${formatBytes(bytes)}${session.stopped.length ? `, down ${session.downtimeSeconds().toFixed(1)} s` : ", no downtime"}`);
  } catch (caught) {
    turn.end();
    let error = caught;
    if (caught instanceof SessionOpenError) {
      facts = caught.facts;
      error = caught.error;
    }
    record.status = "failed";
    record.error = describeEngineError(error);
    record.artifacts = [];
    await rm(serviceDir, { recursive: true, force: true });
    log.error(`${service.name}: backup failed: ${record.error}`);
  }
  record.stopped = [...(session?.stopped ?? [])];
  if (facts) record.facts = facts;
  record.downtimeSeconds = round(session?.downtimeSeconds() ?? 0);
  record.durationSeconds = round((performance.now() - started) / 1000);
  return record;
}

const round = (value: number) => Math.round(value * 1000) / 1000;

/** Waits for the service's turn in the stop window; a wait that took time is logged. */
async function waitLogged(service: string, what: string, wait: () => Promise<void>): Promise<void> {
  const started = performance.now();
  await wait();
  const seconds = (performance.now() - started) / 1000;
  if (seconds >= 0.1) log.info(`${service}: waited ${formatSeconds(seconds)} ${what} (a stopped service's capture gets the machine to itself)`);
}

/** Units captured at once: composure.yml's `parallelism`, else the machine's cores, at most 4. */
export const parallelismOf = (config: Config) => config.parallelism ?? Math.min(os.availableParallelism(), 4);

/**
 * Captures, then releases (downtime is the capture, nothing more). When both fail, the capture's
 * error stays first (it is why the run failed) and the failed restart is added to it.
 */
async function captureThenRelease(who: string, capture: () => Promise<Artifact[]>, release: () => Promise<void>): Promise<Artifact[]> {
  let captured: { artifacts: Artifact[] } | { error: unknown };
  try {
    await failpoint("backup:capture", who);
    captured = { artifacts: await capture() };
    await failpoint("backup:release");
  } catch (error) {
    captured = { error };
  }
  try {
    await release();
  } catch (error) {
    if ("error" in captured) throw new Error(`${describeEngineError(captured.error)}; restarting afterwards failed too: ${describeEngineError(error)}`);
    throw error;
  }
  if ("error" in captured) throw captured.error;
  return captured.artifacts;
}

/** composure.exec.pre / .post: an argv run in the service's first running container. */
async function runHook(planned: PlannedService, which: "pre" | "post"): Promise<void> {
  const argv = planned.settings.exec?.[which];
  if (!argv) return;
  const container = planned.service.containers.find((candidate) => candidate.running);
  if (!container) throw new Error(`cannot run the ${which} hook: no container of ${planned.service.name} is running`);
  const timeoutMs = (planned.settings.exec?.timeout ?? 300) * 1000;
  const result = await execCapture(container.id, argv, { timeoutMs });
  if (result.exitCode !== 0) {
    throw new Error(`${which} hook ${JSON.stringify(argv)} exited with ${result.exitCode}: ${result.stderr.trim() || result.stdout.trim()}`);
  }
}

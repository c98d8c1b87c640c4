// make verify DEEP=1: a restore drill. Every service of a run is restored into a scratch copy of
// the project (same images and settings, new empty volumes, an internal network, no published
// ports: see docker/scratch-stack.ts), started, and probed by its strategy; the answers are
// compared with the facts recorded at backup time. Production containers and volumes are only
// read (inspected). The scratch stack is removed at the end, also on failure and on SIGINT/SIGTERM;
// after a SIGKILL the next composure command removes it (cli.ts).
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { ServiceRecord } from "../catalog/manifest.ts";
import { findRun } from "../catalog/runs.ts";
import { discoverProject, type ProjectInfo, type ServiceInfo } from "../compose/discover.ts";
import type { Config } from "../config/schema.ts";
import { startContainer } from "../docker/containers.ts";
import { getEngine } from "../docker/engine.ts";
import { createScratchStack, type ScratchStack } from "../docker/scratch-stack.ts";
import { UsageError, messageOf } from "../errors.ts";
import { formatSeconds, log } from "../log.ts";
import { getStrategy } from "../strategies/registry.ts";
import { openRunReader, type ArtifactReader } from "../store/read.ts";
import { repositoryOf } from "../store/restic.ts";
import { createRunScope, type ProbeContext, type RestoreContext, type RunScope, type Strategy } from "../strategies/types.ts";
import { CleanupStack } from "./cleanup.ts";
import { StopJournal } from "../lifecycle/journal.ts";
import { currentSettings } from "./restore.ts";

export interface DrillResult {
  service: string;
  strategy: string;
  ok: boolean;
  /** The strategy's restore alone. */
  restoreSeconds: number;
  /** From this service's turn (its copy waiting to answer) until it answered as recorded: its measured RTO. */
  totalSeconds: number;
  message: string;
  /** Each fact that differs from the backup's, naming it. */
  differences: string[];
}

export interface DrillReport {
  run: string;
  scratchProject: string;
  results: DrillResult[];
  /** The whole drill, from creating the scratch stack until the last service answered: the stack's RTO. */
  seconds: number;
}

const readyTimeoutMs = Number(process.env.COMPOSURE_DRILL_READY_TIMEOUT_SECONDS || 600) * 1000;

export async function runDrill(config: Config, helperImage: string, project: string, selector: string): Promise<DrillReport> {
  const { manifest, dir } = await findRun(config.destination, project, selector);
  // Services with data, and node groups of a cluster captured with another service.
  const records = manifest.services.filter((record) => record.status === "ok" && (record.artifacts.length > 0 || record.facts?.capturedWith));
  if (records.length === 0) throw new UsageError(`run ${manifest.runId} of project ${project} has no restorable service to drill`);
  const production = await discoverProject(project);
  const copied = records.filter((record) => production.services.some((service) => service.name === record.name));
  const results: DrillResult[] = records.filter((record) => !copied.includes(record)).map((record) => failed(record, `no container of service ${record.name} in project ${project} to take its image and settings from`));
  const started = performance.now();
  const cleanup = new CleanupStack();
  const uninstall = cleanup.releaseOnSignals();
  const journalDir = await mkdtemp(path.join(os.tmpdir(), "composure-drill-"));
  try {
    const starting = startScratch(production, copied);
    await cleanup.pushWhenReady("remove the drill's containers, volumes and network", starting.then((stack) => stack.remove));
    const stack = await starting;
    log.info(`drill of run ${manifest.runId}: scratch project ${stack.project} (internal network, no published ports)`);
    const reader = await openRunReader(dir, copied.flatMap((record) => record.artifacts), repositoryOf(config, project));
    const drill = { config, helperImage, sourceProject: project, scratchProject: stack.project, runDir: dir, journal: new StopJournal(journalDir), scope: createRunScope(), reader };
    for (const record of copied) results.push(await drillService(drill, record));
    return { run: manifest.runId, scratchProject: stack.project, results, seconds: (performance.now() - started) / 1000 };
  } finally {
    await cleanup.releaseAll();
    uninstall();
    await rm(journalDir, { recursive: true, force: true });
  }
}

async function startScratch(production: ProjectInfo, records: ServiceRecord[]): Promise<ScratchStack> {
  const services = production.services.filter((service) => records.some((record) => record.name === service.name));
  const capturedBinds = new Set(records.flatMap((record) => record.artifacts).filter((artifact) => artifact.volume?.kind === "bind").map((artifact) => artifact.volume!.name));
  const stack = await createScratchStack({ source: production, services, capturedBinds });
  // Copies of services whose data is files stay stopped: an application that writes would change
  // the restored data before the probe reads it.
  const offline = new Set(records.filter((record) => getStrategy(record.strategy).offline).map((record) => record.name));
  try {
    for (const container of stack.containers) if (!offline.has(container.service)) await startContainer(container.id);
  } catch (error) {
    await stack.remove().catch((removeError: unknown) => log.warn(messageOf(removeError))); // the first error is the one to report
    throw error;
  }
  return stack;
}

interface Drill {
  config: Config;
  helperImage: string;
  sourceProject: string;
  scratchProject: string;
  runDir: string;
  journal: StopJournal;
  /** What the strategies share across this drill's services (a cluster restored once). */
  scope: RunScope;
  reader: ArtifactReader;
}

function failed(record: ServiceRecord, message: string, differences: string[] = []): DrillResult {
  return { service: record.name, strategy: record.strategy, ok: false, restoreSeconds: 0, totalSeconds: 0, message, differences };
}

async function drillService(drill: Drill, record: ServiceRecord): Promise<DrillResult> {
  const strategy = getStrategy(record.strategy);
  if (!strategy.probe) return failed(record, `the ${record.strategy} strategy has no probe: it cannot be drilled`);
  const started = performance.now();
  try {
    await waitUntilAnswering(drill, record, strategy);
    const restoreStarted = performance.now();
    await strategy.restore(await restoreContext(drill, record), record.artifacts);
    const restoreSeconds = (performance.now() - restoreStarted) / 1000;
    await waitUntilAnswering(drill, record, strategy);
    const probe = await strategy.probe(await probeContext(drill, record), record.artifacts);
    const totalSeconds = (performance.now() - started) / 1000;
    const { differences } = probe;
    const message = probe.ok ? `restored in ${formatSeconds(restoreSeconds)}, answers as recorded at backup time (${formatSeconds(totalSeconds)} from a fresh container to a verified copy)` : `restored, but differs from the backup: ${differences.join("; ") || "the probe failed"}`;
    return { service: record.name, strategy: record.strategy, ok: probe.ok, restoreSeconds, totalSeconds, message, differences };
  } catch (error) {
    return { ...failed(record, messageOf(error)), totalSeconds: (performance.now() - started) / 1000 };
  }
}

async function scratchService(drill: Drill, name: string): Promise<{ project: ProjectInfo; service: ServiceInfo }> {
  const project = await discoverProject(drill.scratchProject);
  const service = project.services.find((candidate) => candidate.name === name);
  if (!service) throw new Error(`the drill copy of service ${name} is gone`);
  return { project, service };
}

async function restoreContext(drill: Drill, record: ServiceRecord): Promise<RestoreContext<unknown>> {
  const { project, service } = await scratchService(drill, record.name);
  return {
    config: drill.config,
    project,
    sourceProject: drill.sourceProject,
    ...currentSettings(drill.config, project, record),
    helperImage: drill.helperImage,
    journal: drill.journal,
    scope: drill.scope,
    service,
    serviceName: record.name,
    record,
    runDir: drill.runDir,
    dryRun: false,
    reader: drill.reader,
  };
}

async function probeContext(drill: Drill, record: ServiceRecord, found?: { project: ProjectInfo; service: ServiceInfo }): Promise<ProbeContext<unknown>> {
  const { project, service } = found ?? (await scratchService(drill, record.name));
  return {
    config: drill.config,
    project,
    ...currentSettings(drill.config, project, record),
    helperImage: drill.helperImage,
    journal: drill.journal,
    scope: drill.scope,
    service,
    sourceProject: drill.sourceProject,
  };
}

/**
 * Waits until the copy answers its strategy's probe twice in a row (a database image may answer
 * once from a temporary server of its first start); a copy whose container exited fails at once.
 */
async function waitUntilAnswering(drill: Drill, record: ServiceRecord, strategy: Strategy<unknown>): Promise<void> {
  const deadline = Date.now() + readyTimeoutMs;
  let streak = 0;
  let last = "no answer yet";
  for (;;) {
    const found = await scratchService(drill, record.name);
    await failIfExited(found.service);
    try {
      const answer = await strategy.probe!(await probeContext(drill, record, found), []);
      streak = answer.ok ? streak + 1 : 0;
      if (!answer.ok) last = answer.differences.join("; ") || "not ready";
    } catch (error) {
      streak = 0;
      last = messageOf(error);
    }
    if (streak >= 2) return;
    if (Date.now() >= deadline) throw new Error(`the drill copy of ${record.name} did not answer within ${readyTimeoutMs / 1000} s: ${last}`);
    await sleep(streak > 0 ? 1000 : 2000);
  }
}

async function failIfExited(service: ServiceInfo): Promise<void> {
  for (const container of service.containers.filter((candidate) => !candidate.running)) {
    const info = await getEngine().getContainer(container.id).inspect();
    if (info.State.Status === "created" || info.State.Restarting) continue; // offline copies stay created
    const logs = (await getEngine().getContainer(container.id).logs({ stdout: true, stderr: true, tail: 8 })) as unknown as Buffer;
    const tail = logs.toString("utf8").replace(/[\u0000-\u0008\u000e-\u001f]/g, "").trim().split("\n").slice(-8).join(" | ");
    throw new Error(`the drill copy of ${service.name} exited with code ${info.State.ExitCode}${tail ? `: ${tail}` : ""}`);
  }
}

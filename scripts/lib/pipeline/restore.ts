// make restore: pick the run, show what will be stopped and replaced, ask (or require FORCE=1
// without a TTY), then restore each chosen service with its strategy, keeping a rescue run of
// the data being replaced so a mistaken restore can itself be undone.
import os from "node:os";
import path from "node:path";
import { mkdir } from "node:fs/promises";
import { createInterface } from "node:readline/promises";
import { writeManifest, type Artifact, type Manifest, type ServiceRecord } from "../catalog/manifest.ts";
import { createRunDir, findRun, projectDir } from "../catalog/runs.ts";
import { discoverProject, type ProjectInfo } from "../compose/discover.ts";
import { didYouMean } from "../config/did-you-mean.ts";
import { resolveServiceSettings } from "../config/load.ts";
import type { Config, ServiceSettings } from "../config/schema.ts";
import { removeLeftoverHelpers } from "../docker/helper.ts";
import { RefusedError, UsageError } from "../errors.ts";
import { log } from "../log.ts";
import { detectStrategy, getStrategy, strategyKinds } from "../strategies/registry.ts";
import { stagingCleaner } from "../strategies/volume/swap.ts";
import type { RescueSink, RestoreContext } from "../strategies/types.ts";
import { StopJournal } from "./journal.ts";
import { acquireLock } from "./lock.ts";

export interface RestoreRequest {
  project: string;
  /** INTO=: restore into this project instead (a migration, or a copy next to the original); its containers must exist. */
  into?: string;
  run: string;
  service?: string;
  volume?: string;
  dryRun: boolean;
  force: boolean;
  rescue: boolean;
  interactive: boolean;
  /** CONFLICT=: the policy for existing data, for strategies that offer one (elasticsearch). */
  conflict?: string;
}

export async function runRestore(config: Config, helperImage: string, request: RestoreRequest): Promise<string[]> {
  const { manifest, dir } = await findRun(config.destination, request.project, request.run, request.service);
  const records = chooseServices(manifest, request);
  const target = request.into ?? request.project;
  const project = await discoverProject(target);
  if (target !== request.project) requireTargetServices(project, records, request.project);
  const journal = new StopJournal(projectDir(config.destination, target));
  const contextFor = (record: ServiceRecord, dryRun: boolean, rescue?: RescueSink): RestoreContext<unknown> => ({
    config,
    project,
    sourceProject: request.project,
    ...currentSettings(config, project, record),
    helperImage,
    journal,
    service: project.services.find((service) => service.name === record.name),
    serviceName: record.name,
    record,
    runDir: dir,
    volume: request.volume,
    rescue,
    dryRun,
    conflict: request.conflict,
  });
  const preview = await restoreAll(records, request, (record) => contextFor(record, true, request.rescue ? noRescue : undefined));
  if (request.dryRun) return preview;
  await confirm(manifest, preview, request);
  const unlock = await acquireLock(projectDir(config.destination, target), "restore", config.lock.timeout_seconds);
  try {
    await journal.recover(stagingCleaner(helperImage, target));
    await removeLeftoverHelpers(target);
    const rescue = request.rescue ? createRescueSink(config, project, manifest) : undefined;
    const done = await restoreAll(records, request, (record) => contextFor(record, false, rescue?.sink));
    if (rescue) {
      const sealed = await rescue.seal();
      for (const line of sealed) log.info(line);
      done.push(...sealed);
    }
    return done;
  } finally {
    await unlock();
  }
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

const noRescue: RescueSink = { dir: async () => "", add: () => undefined };

function chooseServices(manifest: Manifest, request: RestoreRequest): ServiceRecord[] {
  const restorable = manifest.services.filter((record) => record.status === "ok");
  if (!request.service) return restorable;
  const record = restorable.find((candidate) => candidate.name === request.service);
  if (!record) {
    const names = restorable.map((candidate) => candidate.name);
    throw new UsageError(`run ${manifest.runId} has no backup of service ${request.service}${didYouMean(request.service, names)} (it has: ${names.join(", ") || "none"})`);
  }
  if (request.volume && !record.artifacts.some((artifact) => matchesVolume(artifact, request.volume!))) {
    const volumes = record.artifacts.map((artifact) => artifact.volume?.composeName ?? (artifact.facts?.database as string | undefined) ?? artifact.path);
    throw new UsageError(`service ${request.service} in run ${manifest.runId} has no volume ${request.volume} (it has: ${volumes.join(", ")})`);
  }
  return [record];
}

/** VOLUME= names a volume (docker or compose name), a database of a database strategy, or an index of a snapshot. */
export function matchesVolume(artifact: Artifact, volume: string): boolean {
  const indices = artifact.facts?.indices;
  // facts.selectors: other names an artifact answers to (cassandra: its keyspaces and keyspace.table names).
  const selectors = artifact.facts?.selectors;
  return artifact.volume?.name === volume || artifact.volume?.composeName === volume || artifact.facts?.database === volume || (Array.isArray(indices) && indices.includes(volume)) || (Array.isArray(selectors) && selectors.includes(volume));
}

async function restoreAll(records: ServiceRecord[], request: RestoreRequest, contextFor: (record: ServiceRecord) => RestoreContext<unknown>): Promise<string[]> {
  const lines: string[] = [];
  for (const record of records) {
    const artifacts = record.artifacts.filter((artifact) => !request.volume || matchesVolume(artifact, request.volume));
    const strategy = getStrategy(record.strategy);
    const done = await strategy.restore(contextFor(record), artifacts);
    lines.push(...done.map((line) => `${record.name}: ${line}`));
    if (!contextFor(record).dryRun) for (const line of done) log.info(`${record.name}: ${line}`);
  }
  return lines;
}

async function confirm(manifest: Manifest, preview: string[], request: RestoreRequest): Promise<void> {
  if (request.force) return;
  const summary = `restore of run ${manifest.runId} (${manifest.startedAt}) of project ${request.project} into project ${request.into ?? request.project}:\n${preview.map((line) => `  ${line}`).join("\n")}`;
  if (!request.interactive) {
    throw new RefusedError(`${summary}\nrestore replaces live data: run it again with FORCE=1 to proceed (DRY_RUN=1 only shows this plan)`);
  }
  const prompt = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await prompt.question(`${summary}\nType "yes" to proceed: `);
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
    async dir(service) {
      run ??= createRunDir(config.destination, project.name, startedAt, "-rescue");
      const serviceDir = path.join((await run).runDir, service);
      await mkdir(serviceDir, { recursive: true, mode: 0o700 });
      return serviceDir;
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

// What Prometheus and VictoriaMetrics share: their options and backup flow (each strategy brings
// only its API check, snapshot call and snapshot paths), a snapshot directory inside the data
// volume that is archived through a read-only helper and always removed afterwards, a restore
// that replaces the data directory with the snapshot's content while the service is stopped,
// and restore-drill facts taken through the Prometheus query API (both speak it).
import { z } from "zod";
import type { Artifact } from "../../catalog/manifest.ts";
import type { SelectedMount } from "../../compose/mounts.ts";
import { shellQuote, swapInStagedLines, writeScript } from "../../archive/tar-transfer.ts";
import type { ExtractTree } from "../../store/types.ts";
import { createVolume, inspectVolume } from "../../docker/volumes.ts";
import { log } from "../../log.ts";
import { containersToStop, stopContainers } from "../../lifecycle/stopper.ts";
import type { Leftover } from "../../lifecycle/journal.ts";
import type { BackupContext, CaptureSession, ProbeContext, ProbeResult, RestoreContext, Strategy } from "../types.ts";
import { hotSession } from "./session.ts";
import { withHelper } from "../../docker/helper.ts";
import { captureMounts } from "./mount-capture.ts";
import { describeFailure, endpoint, parseJson, withServiceNetwork, type HttpClient } from "./http.ts";
import { archiveBaseName, helperPath, locateDataPath, requireDataLocation, requireRunningContainer, runningContainer, volumeFactsOf, type DataLocation, type VolumeFacts } from "./service-data.ts";

// ---------------------------------------------------------------------------------------------
// Restore-drill facts through the query API

export interface SeriesSample {
  metric: Record<string, string>;
  /** [unix seconds, value as the API spells it] */
  points: [number, string][];
}

export interface QueryFacts {
  /** The PromQL/MetricsQL expression and the fixed range it was evaluated over. */
  query: string;
  start: number;
  end: number;
  step: number;
  /** How many series the database held (see TsdbFlavor.seriesCount for what is counted). */
  series?: number;
  /** A few values of the query, to be found again after a restore. */
  samples: SeriesSample[];
  /** Why the facts could not be taken (the backup itself does not fail for that). */
  error?: string;
}

/** Facts are taken over a window that ends a minute in the past, on a step boundary: samples there are final. */
export const factsWindowSeconds = 6 * 3600;
export const factsStepSeconds = 60;
const maxSeries = 3;
const maxPointsPerSeries = 6;

export function factsRange(nowSeconds: number): { start: number; end: number; step: number } {
  const end = Math.floor((nowSeconds - 60) / factsStepSeconds) * factsStepSeconds;
  return { start: end - factsWindowSeconds, end, step: factsStepSeconds };
}

interface ApiAnswer<T> {
  status: string;
  data: T;
  error?: string;
}

type Matrix = { metric: Record<string, string>; values: [number, string][] }[];

/** Runs a range query; fails with the API's message. */
export async function queryRange(http: HttpClient, url: string, query: string, range: { start: number; end: number; step: number }): Promise<Matrix> {
  const response = await http.get(endpoint(url, "/api/v1/query_range", { query, ...range }), 120_000);
  if (response.status !== 200) throw new Error(`query ${JSON.stringify(query)} failed: ${describeFailure(response)}`);
  const answer = parseJson<ApiAnswer<{ resultType: string; result: Matrix }>>(response, `query ${JSON.stringify(query)}`);
  if (answer.status !== "success") throw new Error(`query ${JSON.stringify(query)} failed: ${answer.error ?? answer.status}`);
  return answer.data.result;
}

/** Runs an instant query that yields one number (0 for an empty result). */
export async function queryScalar(http: HttpClient, url: string, query: string, time: number): Promise<number> {
  const response = await http.get(endpoint(url, "/api/v1/query", { query, time }), 120_000);
  if (response.status !== 200) throw new Error(`query ${JSON.stringify(query)} failed: ${describeFailure(response)}`);
  const answer = parseJson<ApiAnswer<{ result: { value: [number, string] }[] }>>(response, `query ${JSON.stringify(query)}`);
  if (answer.status !== "success") throw new Error(`query ${JSON.stringify(query)} failed: ${answer.error ?? answer.status}`);
  return answer.data.result.length ? Number(answer.data.result[0].value[1]) : 0;
}

const metricKey = (metric: Record<string, string>) => JSON.stringify(Object.entries(metric).sort(([a], [b]) => a.localeCompare(b)));

/** Keeps a few series (in a stable order) and a few evenly spaced points of each. */
export function pickSamples(matrix: Matrix): SeriesSample[] {
  return [...matrix]
    .sort((a, b) => metricKey(a.metric).localeCompare(metricKey(b.metric)))
    .slice(0, maxSeries)
    .map((series) => {
      const values = series.values;
      const count = Math.min(maxPointsPerSeries, values.length);
      const indexes = new Set(Array.from({ length: count }, (_, index) => (count === 1 ? 0 : Math.round((index * (values.length - 1)) / (count - 1)))));
      return { metric: series.metric, points: [...indexes].map((index) => [Number(values[index][0]), String(values[index][1])] as [number, string]) };
    });
}

export async function collectQueryFacts(http: HttpClient, url: string, query: string, nowSeconds: number, seriesCount: (http: HttpClient, url: string, at: number) => Promise<number>): Promise<QueryFacts> {
  const range = factsRange(nowSeconds);
  const facts: QueryFacts = { query, ...range, samples: [] };
  try {
    facts.series = await seriesCount(http, url, range.end);
    facts.samples = pickSamples(await queryRange(http, url, query, range));
  } catch (error) {
    facts.error = (error as Error).message;
  }
  return facts;
}

/** What differs between the facts recorded at backup time and the same queries now. */
export function compareQueryFacts(recorded: QueryFacts, current: { series?: number; matrix: Matrix }, seriesMode: "equal" | "at-least"): string[] {
  const problems: string[] = [];
  if (recorded.series !== undefined && current.series !== undefined) {
    const fine = seriesMode === "equal" ? current.series === recorded.series : current.series >= recorded.series;
    if (!fine) problems.push(`${current.series} series instead of ${seriesMode === "equal" ? "" : "at least "}${recorded.series}`);
  }
  const byMetric = new Map(current.matrix.map((series) => [metricKey(series.metric), series.values]));
  for (const sample of recorded.samples) {
    const values = byMetric.get(metricKey(sample.metric));
    const name = `${recorded.query} ${JSON.stringify(sample.metric)}`;
    if (!values) {
      problems.push(`series ${name} is missing`);
      continue;
    }
    const at = new Map(values.map(([time, value]) => [Number(time), String(value)]));
    for (const [time, value] of sample.points) {
      if (at.get(time) !== value) problems.push(`${name} at ${new Date(time * 1000).toISOString()} is ${at.get(time) ?? "absent"} instead of ${value}`);
    }
  }
  return problems;
}

/** Polls a readiness endpoint until it answers 200. */
export async function waitReady(http: HttpClient, url: string, readyPath: string, product: string, service: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  while (Date.now() < deadline) {
    const response = await http.get(endpoint(url, readyPath), 10_000);
    if (response.status === 200) return;
    last = describeFailure(response);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  throw new Error(`${product} of service ${service} did not become ready at ${endpoint(url, readyPath)} within ${Math.round(timeoutMs / 1000)} s (last answer: ${last}): see its log (docker compose logs ${service})`);
}

// ---------------------------------------------------------------------------------------------
// The snapshot in the volume

/** Recorded in artifact.facts: what restore and restore drills need. */
export interface SnapshotFacts {
  kind: "tsdb-snapshot";
  product: string;
  snapshot: string;
  url: string;
  /** The data directory in the container, and inside its volume. */
  dataPath: string;
  subpath: string;
  /** uid:gid owning the data directory (the server's user: nobody for Prometheus). */
  owner?: string;
  takenAt: string;
  drill: QueryFacts;
}

/** Archives `<data>/<snapshotDir>` from the data volume through a read-only helper. */
export async function captureSnapshotDir(
  ctx: BackupContext<unknown>,
  location: DataLocation,
  snapshotDir: string,
  options: { dereference: boolean; artifactName: string; facts: Omit<SnapshotFacts, "owner" | "subpath"> },
): Promise<Artifact> {
  const volume = await volumeFactsOf(location.mount, ctx.project.name);
  return withHelper(ctx.helperImage, ctx.project.name, [`${location.mount.source}:/v:ro`], async (helper, pipe) => {
    const dataDir = helperPath("/v", location.subpath);
    const source = helperPath(dataDir, snapshotDir);
    const owner = await helper.run(["stat", "-c", "%u:%g", dataDir]);
    const present = await helper.run(["test", "-d", source]);
    if (present.exitCode !== 0) {
      throw new Error(`the snapshot ${snapshotDir} is not in ${location.containerPath} on volume ${location.mount.source}: is data_path (${location.containerPath}) the server's storage path?`);
    }
    const stored = await ctx.store.putTree(options.artifactName, { helper, pipe, dir: source, dereference: options.dereference }, `${ctx.service.name} ${snapshotDir}`);
    const facts: SnapshotFacts = { ...options.facts, subpath: location.subpath, owner: owner.exitCode === 0 ? owner.stdout.trim() : undefined };
    return { ...stored, volume, facts: facts as unknown as Record<string, unknown> };
  });
}

/** Removes paths (relative to the data directory) through a helper mounting the volume read-write; checks they are gone. */
export async function removeFromDataDir(image: string, project: string, location: DataLocation, relativePaths: string[]): Promise<void> {
  await withHelper(image, project, [`${location.mount.source}:/v`], async (helper) => {
    const dataDir = helperPath("/v", location.subpath);
    const targets = relativePaths.map((relative) => shellQuote(helperPath(dataDir, relative)));
    const script = `rm -rf -- ${targets.join(" ")}; for t in ${targets.join(" ")}; do if [ -e "$t" ] || [ -L "$t" ]; then echo "still there: $t" >&2; exit 1; fi; done`;
    const removed = await helper.run(["sh", "-c", script]);
    if (removed.exitCode !== 0) throw new Error(`cannot remove ${relativePaths.join(", ")} from volume ${location.mount.source}: ${removed.stderr.trim()}`);
  });
}

// ---------------------------------------------------------------------------------------------
// Snapshots a killed run may have left behind

/** What a TSDB snapshot's journal entry holds: where it is, to remove it after a killed run. */
interface SnapshotLeftover {
  product: string;
  /** Docker volume name (or host path of a bind mount) and the data directory inside it. */
  source: string;
  mount: "volume" | "bind";
  subpath: string;
  /** Directories of the snapshot relative to the data directory. */
  paths: string[];
}

/** Removes a snapshot a killed run left in the data volume (its journal entry). */
export async function removeLeftoverSnapshot(leftover: Leftover, env: { helperImage: string; project: string }): Promise<void> {
  const entry = leftover.data as unknown as SnapshotLeftover;
  if (entry.mount === "volume" && !(await inspectVolume(entry.source))) return;
  const location: DataLocation = { mount: { type: entry.mount, source: entry.source, destination: "", readOnly: false }, subpath: entry.subpath, containerPath: "" };
  await removeFromDataDir(env.helperImage, env.project, location, entry.paths);
  log.info(`${leftover.service}: removed ${entry.product} snapshot ${entry.paths[0]} left behind by an interrupted run (${leftover.since})`);
}

/**
 * Writes a snapshot just taken into the run's journal (a run killed from here on leaves it to
 * the next command to remove); returns the step that strikes it off once it is deleted. When even
 * that fails, the snapshot is deleted at once.
 */
async function notePendingSnapshot(ctx: BackupContext<unknown>, kind: string, product: string, location: DataLocation, paths: string[]): Promise<() => Promise<void>> {
  const entry: SnapshotLeftover = { product, source: location.mount.source, mount: location.mount.type, subpath: location.subpath, paths };
  try {
    return await ctx.journal.note(kind, ctx.service.name, { ...entry });
  } catch (error) {
    await removeFromDataDir(ctx.helperImage, ctx.project.name, location, paths).catch(() => undefined);
    throw new Error(`cannot write the snapshot into the journal (${(error as Error).message}): deleted it again`);
  }
}

// ---------------------------------------------------------------------------------------------
// Backup: options, the snapshot's session from opening to release

/** The options of both strategies; only the defaults differ. */
export function tsdbOptions(defaults: { url: string; dataPath: string }) {
  return z
    .object({
      /** Where the server answers inside its own container (the helper shares its network namespace). */
      url: z.string().url().default(defaults.url),
      /** The server's storage path in the container (Prometheus --storage.tsdb.path, VictoriaMetrics -storageDataPath). */
      data_path: z.string().regex(/^\//, "give the absolute path in the container").default(defaults.dataPath),
      /** Query whose values are recorded for restore drills. */
      query: z.string().min(1).default("up"),
      /** Seconds the snapshot may take. */
      timeout: z.coerce.number().int().positive().max(86_400).default(600),
    })
    .strict();
}

export type TsdbOptions = z.infer<ReturnType<typeof tsdbOptions>>;

/** What differs between the Prometheus and VictoriaMetrics backups; the flow around it is shared. */
export interface TsdbSnapshotHooks {
  flavor: TsdbFlavor;
  /** What the running container is needed for, as the error without one says ("a Prometheus TSDB snapshot"). */
  purpose: string;
  /** Fails, saying what to do, when the server cannot be reached (or cannot take snapshots). */
  checkApi(http: HttpClient, service: string, url: string): Promise<void>;
  /** Takes a snapshot through the server's API; returns its name. */
  takeSnapshot(http: HttpClient, service: string, url: string, timeoutSeconds: number): Promise<string>;
  /** How the log line says it: "taken", "created". */
  took: string;
  /** The directories of one snapshot, relative to the data directory; the first is the one archived. */
  snapshotPaths(name: string): string[];
  /** Archive what symlinks in the snapshot point to (tar -h) rather than the links. */
  dereference: boolean;
  /** Asks the server to delete the snapshot before its directories are removed from the volume (warns, never fails). */
  deleteViaApi?(ctx: BackupContext<unknown>, url: string, snapshot: string): Promise<void>;
}

/**
 * Takes the snapshot hot: leftovers of killed runs removed, the API checked, restore-drill facts
 * recorded, the snapshot taken and written down as pending. The session archives it; its release
 * deletes it again.
 */
export async function openTsdbSession(ctx: BackupContext<TsdbOptions>, hooks: TsdbSnapshotHooks): Promise<CaptureSession> {
  const { service } = ctx;
  const { product, kind, seriesCount } = hooks.flavor;
  const container = requireRunningContainer(service, hooks.purpose);
  const location = requireDataLocation(service, container, ctx.options.data_path, `composure.${kind}.data_path`);
  const url = ctx.options.url;
  const { snapshot, drill, strikeOff } = await withServiceNetwork(ctx.helperImage, ctx.project.name, container.id, async (http) => {
    await hooks.checkApi(http, service.name, url);
    // Facts before the snapshot: every sample they name is older than it, so it is in it.
    const drill = await collectQueryFacts(http, url, ctx.options.query, Date.now() / 1000, seriesCount);
    if (drill.error) log.warn(`${service.name}: restore-drill facts not recorded: ${drill.error}`);
    const snapshot = await hooks.takeSnapshot(http, service.name, url, ctx.options.timeout);
    // Written down at once: a run killed from here on leaves it for the next run to remove.
    return { drill, snapshot, strikeOff: await notePendingSnapshot(ctx as BackupContext<unknown>, kind, product, location, hooks.snapshotPaths(snapshot)) };
  });
  const takenAt = new Date().toISOString();
  log.info(`${service.name}: ${product} snapshot ${snapshot} ${hooks.took}`);
  // Stored as `<kind>-snapshot` with the facts restore and drills need.
  const capture = async (): Promise<Artifact[]> => [
    await captureSnapshotDir(ctx as BackupContext<unknown>, location, hooks.snapshotPaths(snapshot)[0], {
      dereference: hooks.dereference,
      artifactName: `${kind}-snapshot`,
      facts: { kind: "tsdb-snapshot", product, snapshot, url, dataPath: location.containerPath, takenAt, drill },
    }),
  ];
  const release = async () => {
    await hooks.deleteViaApi?.(ctx as BackupContext<unknown>, url, snapshot);
    await removeFromDataDir(ctx.helperImage, ctx.project.name, location, hooks.snapshotPaths(snapshot));
    log.info(`${service.name}: snapshot ${snapshot} deleted`);
    await strikeOff();
  };
  return hotSession(capture, { release });
}

/** A TSDB strategy: detection and the hooks are its own, the rest is the shared flow. */
export function tsdbStrategy(spec: TsdbSnapshotHooks & { options: ReturnType<typeof tsdbOptions>; isImage(image: string): boolean }): Strategy<TsdbOptions> {
  const { flavor } = spec;
  return {
    kind: flavor.kind,
    options: spec.options,
    detect: (service) => spec.isImage(service.image),
    openSession: (ctx) => openTsdbSession(ctx, spec),
    restore: (ctx, artifacts) => restoreTsdb(ctx, artifacts, flavor),
    probe: (ctx, recorded) => probeTsdb(ctx, ctx.options.url, ctx.options.query, flavor, recorded),
    undoLeftover: removeLeftoverSnapshot,
  };
}

// ---------------------------------------------------------------------------------------------
// Restore

export interface TsdbFlavor {
  product: string;
  kind: string;
  readyPath: string;
  seriesCount(http: HttpClient, url: string, at: number): Promise<number>;
  /** Prometheus counts series at a fixed instant (equal after a restore); VictoriaMetrics counts its index (only grows). */
  seriesMode: "equal" | "at-least";
  readyTimeoutMs: number;
}

const stagingName = ".composure-restore";

export function snapshotFactsOf(artifact: Artifact): SnapshotFacts {
  const facts = artifact.facts as Partial<SnapshotFacts> | undefined;
  if (!facts || facts.kind !== "tsdb-snapshot" || typeof facts.dataPath !== "string" || typeof facts.subpath !== "string") {
    throw new Error(`artifact ${artifact.path} does not say which data directory it belongs to (no snapshot facts in the manifest)`);
  }
  return facts as SnapshotFacts;
}

export async function restoreTsdb(ctx: RestoreContext<unknown>, artifacts: Artifact[], flavor: TsdbFlavor): Promise<string[]> {
  const done: string[] = [];
  for (const artifact of artifacts) done.push(await restoreSnapshotArtifact(ctx, artifact, flavor));
  return done;
}

async function restoreSnapshotArtifact(ctx: RestoreContext<unknown>, artifact: Artifact, flavor: TsdbFlavor): Promise<string> {
  const facts = snapshotFactsOf(artifact);
  const anyContainer = ctx.service?.containers[0];
  const running = runningContainer(ctx.service);
  const location = resolveLocation(ctx, artifact, facts, anyContainer?.mounts);
  const exists = location.mount.type === "bind" || (await inspectVolume(location.mount.source)) !== undefined;
  const toStop = containersToStop(ctx.project, [ctx.serviceName]);
  const what = `${flavor.product} snapshot ${facts.snapshot} (taken ${facts.takenAt}) into ${facts.dataPath} on ${location.mount.type} ${location.mount.source}`;
  if (ctx.dryRun) {
    return `would restore ${what}: replace the data directory's content; stop ${toStop.map((container) => container.name).join(", ") || "nothing"}; ${exists && ctx.rescue ? "keep a rescue copy of the volume first" : "no rescue copy"}; then check ${facts.drill.samples.length} recorded series of ${JSON.stringify(facts.drill.query)}`;
  }
  if (!exists) {
    const volume = artifact.volume;
    log.info(`creating volume ${location.mount.source} (it does not exist on this host)`);
    await createVolume({ name: location.mount.source, driver: volume?.driver ?? "local", labels: volume?.labels ?? {}, options: {} });
  }
  const stoppage = await stopContainers(toStop, ctx.journal, ctx.config.stop_timeout_seconds);
  try {
    if (exists && ctx.rescue) await keepRescueCopy(ctx, location, artifact.volume);
    await replaceDataDir(ctx.helperImage, ctx.project.name, location, (helper, pipe, dir) => ctx.reader.extract(artifact, helper, pipe, dir, artifact.path), facts.owner);
  } finally {
    await stoppage.release();
  }
  const downtime = stoppage.stopped.length ? ` (stopped ${stoppage.stopped.map((container) => container.name).join(", ")} for ${stoppage.downtimeSeconds().toFixed(1)} s)` : "";
  if (!running) return `restored ${what}${downtime}; the service is not running: start it (docker compose up -d ${ctx.serviceName}) and it serves the restored data`;
  const checked = await checkRestored(ctx, running.id, facts, flavor);
  return `restored ${what}${downtime}; ${checked}`;
}

function resolveLocation(ctx: RestoreContext<unknown>, artifact: Artifact, facts: SnapshotFacts, mounts: DataLocation["mount"][] | undefined): DataLocation {
  if (mounts) {
    const location = locateDataPath(facts.dataPath, mounts);
    if (location) return location;
    throw new Error(`service ${ctx.serviceName} has no volume at ${facts.dataPath} any more: mount its data volume there again before restoring`);
  }
  const volume = artifact.volume;
  if (!volume) throw new Error(`artifact ${artifact.path} does not say which volume it came from, and service ${ctx.serviceName} has no container to ask`);
  return { mount: { type: volume.kind, source: volume.name, destination: "", readOnly: false }, subpath: facts.subpath, containerPath: facts.dataPath };
}

async function keepRescueCopy(ctx: RestoreContext<unknown>, location: DataLocation, volume: VolumeFacts | undefined): Promise<void> {
  const rescue = ctx.rescue!;
  const store = await rescue.store(ctx.serviceName);
  const selected: SelectedMount = {
    mount: { ...location.mount, readOnly: true },
    archiveName: volume ? archiveBaseName(volume) : location.mount.source,
    sharedWith: [],
  };
  const [copy] = await captureMounts(ctx.helperImage, ctx.project.name, [selected], store);
  rescue.add(ctx.serviceName, copy);
  log.info(`kept a rescue copy of ${location.mount.source} as ${copy.path} of the rescue run`);
}

/**
 * Extracts the snapshot into a staging directory inside the data directory, then swaps it in for
 * everything the directory held (WAL, head chunks, caches, old snapshots, lock files), and gives
 * it all to the server's user. A bad archive leaves the old content in place.
 */
export async function replaceDataDir(image: string, project: string, location: DataLocation, extract: ExtractTree, owner: string | undefined): Promise<void> {
  await withHelper(image, project, [`${location.mount.source}:/v`], async (helper, pipe) => {
    if (!pipe) throw new Error("restore through a remote engine is not supported yet: run composure on the Docker host");
    const dataDir = helperPath("/v", location.subpath);
    const staging = helperPath(dataDir, stagingName);
    const prepared = await helper.run(["sh", "-c", `mkdir -p ${shellQuote(dataDir)} && stat -c %u:%g ${shellQuote(dataDir)} && rm -rf ${shellQuote(staging)} && mkdir -m 700 ${shellQuote(staging)}`]);
    if (prepared.exitCode !== 0) throw new Error(`cannot prepare ${location.containerPath} on ${location.mount.source} for the restore: ${prepared.stderr.trim()}`);
    const chownTo = owner && /^\d+:\d+$/.test(owner) ? owner : prepared.stdout.trim();
    try {
      const extraction = await extract(helper, pipe, staging);
      const lines = [...swapInStagedLines(dataDir, stagingName, { ...extraction, root: undefined }), `chown -R ${chownTo} .`];
      const script = await writeScript(pipe, "swap.sh", lines);
      const swapped = await helper.run(["sh", script]);
      if (swapped.exitCode !== 0) throw new Error(`cannot swap the restored files into ${location.containerPath}: ${swapped.stderr.trim()}`);
    } catch (error) {
      await helper.run(["rm", "-rf", staging]);
      throw error;
    }
  });
}

async function checkRestored(ctx: RestoreContext<unknown>, containerId: string, facts: SnapshotFacts, flavor: TsdbFlavor): Promise<string> {
  return withServiceNetwork(ctx.helperImage, ctx.project.name, containerId, async (http) => {
    await waitReady(http, facts.url, flavor.readyPath, flavor.product, ctx.serviceName, flavor.readyTimeoutMs);
    const drill = facts.drill;
    if (drill.error) return `ready (no drill facts were recorded at backup time: ${drill.error})`;
    const { problems, series } = await compareWithRecorded(http, facts.url, drill, flavor);
    if (problems.length) {
      throw new Error(`${flavor.product} of service ${ctx.serviceName} runs on the restored data but does not answer as recorded at backup time: ${summarize(problems)}`);
    }
    const points = drill.samples.reduce((sum, sample) => sum + sample.points.length, 0);
    return `checked: ${series ?? "?"} series, ${points} recorded values of ${JSON.stringify(drill.query)} over ${new Date(drill.start * 1000).toISOString()}..${new Date(drill.end * 1000).toISOString()} match`;
  });
}

function summarize(problems: string[]): string {
  return `${problems.slice(0, 5).join("; ")}${problems.length > 5 ? ` (and ${problems.length - 5} more)` : ""}`;
}

/** Runs the recorded queries again over the recorded range and lists what differs. */
export async function compareWithRecorded(http: HttpClient, url: string, drill: QueryFacts, flavor: TsdbFlavor): Promise<{ problems: string[]; series?: number }> {
  const matrix = await queryRange(http, url, drill.query, drill);
  const series = drill.series === undefined ? undefined : await flavor.seriesCount(http, url, drill.end);
  return { problems: compareQueryFacts(drill, { series, matrix }, flavor.seriesMode), series };
}

/** Live facts of a running TSDB; with the artifacts of a run, also whether it answers as recorded then. */
export async function probeTsdb(ctx: ProbeContext<unknown>, url: string, query: string, flavor: TsdbFlavor, recorded?: Artifact[]): Promise<ProbeResult> {
  const container = runningContainer(ctx.service);
  if (!container) {
    const error = `service ${ctx.service.name} has no running container`;
    return { ok: false, differences: [error], facts: { error } };
  }
  return withServiceNetwork(ctx.helperImage, ctx.project.name, container.id, async (http): Promise<ProbeResult> => {
    try {
      await waitReady(http, url, flavor.readyPath, flavor.product, ctx.service.name, 10_000);
    } catch (error) {
      const message = (error as Error).message;
      return { ok: false, differences: [message], facts: { error: message } };
    }
    const live = await collectQueryFacts(http, url, query, Date.now() / 1000, flavor.seriesCount);
    const facts: Record<string, unknown> = { ...live };
    let ok = !live.error;
    const differences: string[] = [];
    for (const artifact of recorded ?? []) {
      const snapshot = artifact.facts?.kind === "tsdb-snapshot" ? (artifact.facts as unknown as SnapshotFacts) : undefined;
      if (!snapshot || snapshot.drill.error) continue;
      const { problems } = await compareWithRecorded(http, url, snapshot.drill, flavor);
      facts.recorded = { snapshot: snapshot.snapshot, takenAt: snapshot.takenAt, matches: problems.length === 0, problems };
      differences.push(...problems);
      ok &&= problems.length === 0;
    }
    if (live.error) differences.push(live.error);
    return { ok, differences, facts };
  });
}

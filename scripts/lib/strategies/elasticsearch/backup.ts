// Backup: a snapshot of the cluster into an fs repository on a volume shared by every node,
// then the repository directory archived through a read-only helper. No node stops.
import path from "node:path";
import type { ArtifactStore } from "../../store/types.ts";
import type { Artifact } from "../../catalog/manifest.ts";
import { formatSeconds, log } from "../../log.ts";
import { formatCount } from "../shared/in-container.ts";
import { withHelper } from "../../docker/helper.ts";
import { clusterServices, repositoryDirName, type ClusterView, type RepositoryPlace } from "./cluster.ts";
import type { EsClient } from "./http.ts";
import type { ElasticsearchOptions } from "./options.ts";
import { applyRetention, deleteSnapshot, indexStats, listSnapshots, redIndices, refresh, registerRepository, takeSnapshot, unregisterRepository, type IndexStats } from "./snapshot.ts";

/** The live repository composure registers while it works (and removes afterwards). */
export const repositoryName = "composure";

/** composure-<run id>, lower case (snapshot names must be). */
export function snapshotNameFor(runId: string): string {
  return `composure-${runId.toLowerCase().replace(/[^a-z0-9-]+/g, "-")}`;
}

/**
 * The multi-target expression of the options ("a,b*,-c"). By default every index but the hidden
 * and system ones (names starting with a dot), which are snapshotted only when named.
 */
export function indicesExpression(options: Pick<ElasticsearchOptions, "indices" | "exclude_indices">): string {
  const include = (options.indices ?? []).filter((name) => !name.startsWith("-"));
  const exclude = [...(options.indices ?? []).filter((name) => name.startsWith("-")), ...(options.exclude_indices ?? []).map((name) => (name.startsWith("-") ? name : `-${name}`))];
  return [...(include.length ? include : ["*", "-.*"]), ...exclude].join(",");
}

export interface SnapshotFacts {
  kind: "snapshot-repository";
  engine: string;
  version: string;
  cluster: string;
  clusterUuid: string;
  nodes: string[];
  services: string[];
  repository: string;
  repositoryPath: string;
  repositoryVolume: string;
  snapshot: string;
  snapshotUuid?: string;
  includeGlobalState: boolean;
  indices: string[];
  /** Documents per index (primaries), counted right before the snapshot after a refresh. */
  documents: Record<string, number>;
  /** Total of `documents`. */
  totalDocuments: number;
  /** True when no index saw a write during the snapshot: the counts are exactly its content. */
  exactCounts: boolean;
  /** Indices written to while the snapshot ran (their counts may differ slightly). */
  changedDuringSnapshot: string[];
  /** Indices written to while the snapshot ran: [fewer, more] documents of the counts before and after it; the snapshot holds between. */
  documentBounds?: Record<string, [number, number]>;
  shards?: { total: number; failed: number; successful: number };
  /** Every snapshot the archived repository holds (older ones are kept by keep_snapshots). */
  snapshotsInArchive: string[];
  snapshotSeconds: number;
}

export interface SnapshotJob {
  view: ClusterView;
  place: RepositoryPlace;
  options: ElasticsearchOptions;
  project: string;
  helperImage: string;
  snapshot: string;
  /** Multi-target expression; undefined: every index. */
  indices?: string;
  /** Where the snapshot repository goes (as artifact `repository`). */
  store: ArtifactStore;
  label: string;
  /** Backup snapshots to keep in the live repository afterwards; undefined: delete this one (rescue). */
  keep?: number;
  /** Tells an interrupted run (SIGTERM) what it must clean up: set while the job is under way. */
  progress?: JobProgress;
}

export interface JobProgress {
  started: boolean;
  settled: boolean;
}

/** Undoes what an interrupted job left: the snapshot (aborted if it runs) and the registration. */
export async function abandonJob(client: EsClient, job: Pick<SnapshotJob, "snapshot" | "progress">): Promise<void> {
  if (!job.progress?.started || job.progress.settled) return;
  log.warn(`interrupted: deleting snapshot ${job.snapshot} and the registration of repository ${repositoryName}`);
  await deleteSnapshot(client, repositoryName, job.snapshot).catch(() => undefined);
  await unregisterRepository(client, repositoryName).catch(() => undefined);
}

/**
 * Registers the repository, snapshots, archives the repository directory and applies the
 * retention; the registration is removed in every case, and a snapshot of a failed backup too.
 */
export async function snapshotToArchive(job: SnapshotJob): Promise<Artifact> {
  const { view, place, options } = job;
  const client = view.client;
  if (job.progress) job.progress.started = true;
  // Registration and counting run side by side. A red index cannot be snapshotted completely:
  // the snapshot will fail and say so; refreshing it would only wait for its missing shards.
  const measuring = (async () => {
    const red = await redIndices(client, job.indices);
    if (red.length) log.warn(`${job.label}: red ind${red.length === 1 ? "ex" : "ices"} ${red.join(", ")}: a primary shard is unassigned, the snapshot cannot be complete`);
    else await refresh(client, job.indices);
    return { red, before: await indexStats(client, job.indices) };
  })();
  const [registered, measured] = await Promise.allSettled([registerRepository(client, repositoryName, place.location), measuring]);
  try {
    if (registered.status === "rejected") throw registered.reason;
    if (measured.status === "rejected") throw measured.reason;
    const { red, before } = measured.value;
    const started = performance.now();
    const info = await takeSnapshot(client, { repository: repositoryName, snapshot: job.snapshot, indices: job.indices, includeGlobalState: options.include_global_state, timeoutMs: options.timeout_seconds * 1000 }).catch((error: Error) => {
      if (!red.length) throw error;
      throw new Error(`${error.message} (red: ${red.join(", ")}; a primary shard is unassigned: bring its node back, or leave the index out with composure.elasticsearch.exclude_indices)`);
    });
    const snapshotSeconds = (performance.now() - started) / 1000;
    let artifact: Artifact;
    try {
      const indices = [...info.indices].sort();
      const [after, inRepository] = await Promise.all([indices.length ? indexStats(client, indices.join(",")) : {}, listSnapshots(client, repositoryName)]);
      const facts = describeSnapshot(job, info.indices, before, after, snapshotSeconds, info.uuid, info.shards);
      facts.snapshotsInArchive = inRepository.map((entry) => entry.snapshot);
      log.info(`${job.label}: snapshot ${job.snapshot} of ${indices.length} ind${indices.length === 1 ? "ex" : "ices"}, ${formatCount(facts.totalDocuments)} documents taken in ${formatSeconds(snapshotSeconds)}${facts.exactCounts ? "" : ` (written to while it ran: ${facts.changedDuringSnapshot.join(", ")})`}`);
      const stored = await withHelper(job.helperImage, job.project, [`${place.mount.source}:/repo:ro`], (helper, pipe) =>
        job.store.putTree("repository", { helper, pipe, dir: path.posix.join("/repo", place.subpath, repositoryDirName) }, `${job.label}: snapshot repository`),
      );
      artifact = { ...stored, facts: { ...facts } };
    } catch (error) {
      await deleteSnapshot(client, repositoryName, job.snapshot).catch((cleanup: unknown) => log.warn(`${job.label}: could not delete snapshot ${job.snapshot} after the failure: ${(cleanup as Error).message}`));
      throw error;
    }
    await pruneRepository(client, job);
    return artifact;
  } finally {
    await unregisterRepository(client, repositoryName).catch((error: unknown) => log.warn(`${job.label}: could not remove the registration of repository ${repositoryName}: ${(error as Error).message}`));
    if (job.progress) job.progress.settled = true;
  }
}

/** After the archive: keep_snapshots backup snapshots stay in the live repository; a rescue snapshot goes. */
async function pruneRepository(client: EsClient, job: SnapshotJob): Promise<void> {
  try {
    if (job.keep === undefined) {
      await deleteSnapshot(client, repositoryName, job.snapshot);
      return;
    }
    const deleted = await applyRetention(client, repositoryName, job.keep);
    if (deleted.length) log.info(`${job.label}: deleted ${deleted.length} older snapshot(s) from the live repository (keep_snapshots=${job.keep}): ${deleted.join(", ")}`);
  } catch (error) {
    log.warn(`${job.label}: the backup is complete, but pruning old snapshots of the live repository failed: ${(error as Error).message}`);
  }
}

/** An index's live document count against the snapshot's facts: its exact count, or its bounds when it was written to meanwhile. */
export function documentDifference(facts: Partial<SnapshotFacts>, index: string, live: number | undefined, name = index): string | undefined {
  const recorded = facts.documents?.[index];
  if (recorded === undefined) return undefined;
  const bounds = facts.documentBounds?.[index];
  if (live === undefined) return `index ${name} is missing (recorded ${recorded} documents)`;
  if (bounds) return live < bounds[0] || live > bounds[1] ? `index ${name} has ${live} documents, recorded between ${bounds[0]} and ${bounds[1]} (written to during the snapshot)` : undefined;
  return live === recorded ? undefined : `index ${name} has ${live} documents, recorded ${recorded}`;
}

export function describeSnapshot(
  job: Pick<SnapshotJob, "view" | "place" | "options" | "snapshot">,
  snapshotIndices: string[],
  before: Record<string, IndexStats>,
  after: Record<string, IndexStats>,
  snapshotSeconds: number,
  snapshotUuid?: string,
  shards?: SnapshotFacts["shards"],
): SnapshotFacts {
  const indices = [...snapshotIndices].sort();
  const documents: Record<string, number> = {};
  const changed: string[] = [];
  const documentBounds: Record<string, [number, number]> = {};
  for (const index of indices) {
    const first = before[index];
    const last = after[index];
    documents[index] = first?.docs ?? last?.docs ?? 0;
    if (!first || !last || first.operations !== last.operations) changed.push(index);
    if (first && last && first.docs !== last.docs) documentBounds[index] = [Math.min(first.docs, last.docs), Math.max(first.docs, last.docs)];
  }
  return {
    kind: "snapshot-repository",
    engine: job.view.engine,
    version: job.view.version,
    cluster: job.view.name,
    clusterUuid: job.view.uuid,
    nodes: job.view.nodes.map((node) => node.name),
    services: clusterServices(job.view),
    repository: repositoryName,
    repositoryPath: job.place.root,
    repositoryVolume: job.place.displayName,
    snapshot: job.snapshot,
    snapshotUuid,
    includeGlobalState: job.options.include_global_state,
    indices,
    documents,
    totalDocuments: Object.values(documents).reduce((sum, count) => sum + count, 0),
    exactCounts: changed.length === 0,
    changedDuringSnapshot: changed,
    ...(Object.keys(documentBounds).length ? { documentBounds } : {}),
    shards,
    snapshotsInArchive: [],
    snapshotSeconds: Math.round(snapshotSeconds * 1000) / 1000,
  };
}

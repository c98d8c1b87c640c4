// The `elasticsearch` strategy (Elasticsearch and OpenSearch): hot, consistent backups through
// the snapshot API, no node stops.
//
// Backup: check that every master and data node lists the repository directory in path.repo
// (GET _nodes/settings) and mounts the same shared volume there (container inspection); register
// the fs repository `composure` at <repository_path>/composure and verify it; snapshot
// `composure-<run id>` and require SUCCESS with no failed shard; archive the repository directory
// through a read-only helper; delete older composure snapshots beyond keep_snapshots; remove the
// registration. A failed or partial snapshot is deleted, a failed registration removed.
// A cluster made of several services (composure.elasticsearch.cluster=<name>, or found through
// the nodes themselves) is snapshotted once per run, by the first of its services (the run's
// scope remembers which).
//
// Restore: unpack the archived repository into a fresh directory under path.repo on the shared
// volume, register it read-only, restore the run's snapshot with a conflict policy (CONFLICT=
// skip | overwrite | rename | error), wait for yellow, compare document counts, then remove the
// registration and the directory. See README.md.
import path from "node:path";
import { StepError } from "../../errors.ts";
import { log } from "../../log.ts";
import type { Artifact } from "../../catalog/manifest.ts";
import type { BackupContext, ProbeResult, ScopeSlot, Strategy, ProbeContext } from "../types.ts";
import { hotSession } from "../shared/session.ts";
import { abandonJob, documentDifference, indicesExpression, snapshotNameFor, snapshotToArchive, type JobProgress, type SnapshotFacts } from "./backup.ts";
import { checkCluster, clusterServices, findRepositoryPlace, openCluster, type ClusterView, type RepositoryPlace } from "./cluster.ts";
import { indexStats } from "./snapshot.ts";
import { detectElasticsearch, elasticsearchOptions, type ElasticsearchOptions } from "./options.ts";
import { restoreCluster } from "./restore.ts";

export { elasticsearchOptions, isElasticsearchImage } from "./options.ts";

interface Prepared {
  view: ClusterView;
  place: RepositoryPlace;
  /** Set when another service of the run already snapshots this cluster. */
  capturedBy?: string;
  progress: JobProgress;
}

/** Cluster uuid -> the service that snapshots that cluster in this run. */
const capturers: ScopeSlot<Map<string, string>> = { name: "elasticsearch: the service that snapshots each cluster in this run", create: () => new Map() };

function parseOptions(raw: unknown): ElasticsearchOptions {
  const parsed = elasticsearchOptions.safeParse(raw ?? {});
  return parsed.success ? parsed.data : elasticsearchOptions.parse({});
}

async function open(ctx: BackupContext<ElasticsearchOptions>): Promise<Prepared> {
  const view = await openCluster(ctx.project, ctx.service, ctx.options);
  const place = findRepositoryPlace(view, ctx.project, ctx.options);
  const capturedBy = ctx.scope.get(capturers).get(view.uuid);
  const progress = { started: false, settled: false };
  if (capturedBy && capturedBy !== ctx.service.name) return { view, place, capturedBy, progress };
  checkCluster(view, place, ctx.project.name);
  ctx.scope.get(capturers).set(view.uuid, ctx.service.name);
  return { view, place, progress };
}

export const elasticsearchStrategy: Strategy<ElasticsearchOptions> = {
  kind: "elasticsearch",
  clustered: true,
  options: elasticsearchOptions,

  detect(service) {
    return detectElasticsearch(service);
  },

  async openSession(ctx) {
    // Hot: nothing stops. Every check that can fail runs here, before any snapshot exists.
    let state: Prepared;
    let facts: Record<string, unknown>;
    try {
      state = await open(ctx);
      // Every member's record says who captured its cluster, the capturer's too (restore and drills read it).
      facts = { elasticsearchCluster: state.view.name, capturedWith: state.capturedBy ?? ctx.service.name, services: clusterServices(state.view) };
    } catch (error) {
      throw new StepError("prepare", ctx.service.name, error);
    }
    const snapshot = snapshotNameFor(path.basename(ctx.runDir));
    const capture = async () => {
      try {
        if (state.capturedBy) {
          log.info(`${ctx.service.name}: node(s) of cluster ${state.view.name}, whose snapshot service ${state.capturedBy} takes in this run`);
          return [];
        }
        const artifact = await snapshotToArchive({
          view: state.view,
          place: state.place,
          options: ctx.options,
          project: ctx.project.name,
          helperImage: ctx.helperImage,
          snapshot,
          indices: indicesExpression(ctx.options),
          store: ctx.store,
          label: ctx.service.name,
          keep: ctx.options.keep_snapshots,
          progress: state.progress,
        });
        return [artifact];
      } catch (error) {
        // Another node's service of the same cluster may try again in this run.
        if (!state.capturedBy) ctx.scope.get(capturers).delete(state.view.uuid);
        throw error instanceof StepError ? error : new StepError("capture", ctx.service.name, error);
      }
    };
    // Nothing stops, so nothing restarts; an interrupted capture (SIGTERM) leaves no snapshot or registration.
    return hotSession(capture, { facts, release: () => abandonJob(state.view.client, { snapshot, progress: state.progress }) });
  },

  async restore(ctx, artifacts) {
    return restoreCluster(ctx, parseOptions(ctx.options), artifacts);
  },

  async probe(ctx, recorded) {
    return probeCluster(ctx, recorded);
  },
};

/** Live facts (nodes, indices and their documents); with a run's artifacts, compared with them. */
async function probeCluster(ctx: ProbeContext<ElasticsearchOptions>, recorded?: Artifact[]): Promise<ProbeResult> {
  const options = parseOptions(ctx.options);
  const view = await openCluster(ctx.project, ctx.service, options);
  const stats = await indexStats(view.client, indicesExpression(options));
  const documents = Object.fromEntries(Object.entries(stats).map(([name, entry]) => [name, entry.docs]));
  const differences: string[] = [];
  for (const artifact of recorded ?? []) {
    const facts = artifact.facts as Partial<SnapshotFacts> | undefined;
    if (facts?.kind !== "snapshot-repository") continue;
    for (const index of Object.keys(facts.documents ?? {})) {
      const difference = documentDifference(facts, index, documents[index]);
      if (difference) differences.push(difference);
    }
  }
  return {
    ok: differences.length === 0,
    differences,
    facts: { engine: view.engine, version: view.version, cluster: view.name, nodes: view.nodes.map((node) => node.name), services: clusterServices(view), documents, ...(recorded ? { differences } : {}) },
  };
}

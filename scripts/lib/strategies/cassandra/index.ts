// The `cassandra` strategy: hot, cluster-wide `nodetool snapshot` backups (no node stops) and a
// per-node restore with `nodetool import`. See README.md here for the operator's view.
//
// One cluster, one backup. A cluster spans services (the services whose nodes are in one ring, or
// every service labelled `composure.cassandra.cluster=<name>`: see nodes.ts), but the pipeline
// backs up one service at a time.
// So the first member service the pipeline reaches in a run (by name: the pipeline goes in name
// order) is the cluster's *capturer*: its session snapshots EVERY node with one tag when it opens,
// its capture archives every node (`<service>-<n>.tar.zst`) plus `schema.cql`, and its release
// clears the tag on every node. Which clusters a run captures, and by whom, is kept in the run's
// scope (ctx.scope), not in this module. Each other member service, reached later in the same
// run, takes nothing: its record is status ok with no artifacts and the facts
// `{ cassandraCluster, capturedWith }`. If the capturer failed, the members fail too, with the
// capturer's error, so no member looks backed up when the cluster is not. (SERVICE=<member> alone
// makes that member the capturer.)
// Restore keeps this correct: restoring the capturer restores the whole cluster (every node from
// its own archive); a member restored in the same `make restore` reports "restored with
// <capturer>"; a member restored alone (SERVICE=cassandra2) finds the capturer's record in the
// run's manifest and restores the whole cluster from it: a node never gets restored without the
// others, because TRUNCATE is cluster-wide.
import path from "node:path";
import { z } from "zod";
import { readManifest, type Artifact } from "../../catalog/manifest.ts";
import { StepError, messageOf } from "../../errors.ts";
import { formatBytes, formatSeconds, log } from "../../log.ts";
import { SessionOpenError, type BackupContext, type RestoreContext, type ScopeSlot, type Strategy } from "../types.ts";
import { hotSession } from "../shared/session.ts";
import { imagePath, listOption, ToolMissingError } from "../shared/in-container.ts";
import { JmxSession } from "./jmx.ts";
import { discoverCluster, NodesError, runningNodeOf, type Cluster } from "./nodes.ts";
import { probeCassandra } from "./probe.ts";
import { restoreCluster, schemaFactsOf } from "./restore.ts";
import { beginNodeHelpers, captureSnapshot, clearLeftoverTag, takeSnapshot, type NodeHelpers, type Snapshot } from "./snapshot.ts";

export const cassandraOptions = z
  .object({
    /** Joins services into one cluster: every service with the same value is a node group of it. */
    cluster: z.string().regex(/^[A-Za-z0-9_.-]+$/, "expected a name of letters, digits, '.', '_' or '-'").optional(),
    /** Keyspaces to back up (`*` wildcards allowed); default every keyspace but Cassandra's own. */
    keyspaces: listOption.optional(),
    /** Keyspaces to leave out (`*` wildcards allowed). */
    exclude_keyspaces: listOption.optional(),
  })
  .strict();

export type CassandraOptions = z.infer<typeof cassandraOptions>;

/** Images named cassandra, also under a namespace (bitnami/cassandra, composure-fixture/cassandra), any registry and tag. */
export function isCassandraImage(image: string): boolean {
  return imagePath(image).at(-1) === "cassandra";
}

const toolsHint = "the cassandra strategy runs nodetool and cqlsh inside every node's container: use an image that has them (the official cassandra image does), or composure.strategy=volume";

function asStepError(phase: string, service: string, error: unknown): Error {
  if (error instanceof StepError) return error;
  const toolMissing = error instanceof ToolMissingError || (error instanceof NodesError && error.toolMissing);
  return new StepError(phase, service, error, toolMissing ? toolsHint : undefined);
}

// ---------------------------------------------------------------------------------------------
// Backup: who captures the cluster in this run

interface ClusterRun {
  capturer: string;
  cluster: Cluster;
  /** Set when the capturer's snapshot, capture or release failed. */
  error?: string;
}

/** Cluster name -> the cluster's backup in this run, made when its capturer's session opens. */
const clusterRuns: ScopeSlot<Map<string, ClusterRun>> = { name: "cassandra: the clusters of this run and their capturers", create: () => new Map() };

/** The cluster backup of this run that the service is part of (found by an earlier member), if any. */
function memberOf(ctx: BackupContext<CassandraOptions>): { run: ClusterRun; member: boolean } | undefined {
  for (const run of ctx.scope.get(clusterRuns).values()) {
    if (run.cluster.services.includes(ctx.service.name)) return { run, member: run.capturer !== ctx.service.name };
  }
  return undefined;
}

function failMember(ctx: BackupContext<CassandraOptions>, run: ClusterRun): never {
  throw new StepError("prepare", ctx.service.name, new Error(`not backed up: it is part of cassandra cluster ${run.cluster.name}, whose backup by service ${run.capturer} failed: ${run.error}`));
}

// ---------------------------------------------------------------------------------------------
// Restore: which `make restore` already restored which cluster, and how it went

/** runDir + capturer + dry run -> the error of that cluster's restore in this `make restore` (its scope), or undefined when it worked. */
const restoredClusters: ScopeSlot<Map<string, string | undefined>> = { name: "cassandra: the clusters this restore restored", create: () => new Map() };
const restoredKey = (runDir: string, capturer: string, dryRun: boolean) => `${runDir}\u0000${capturer}\u0000${dryRun}`;

/** Restores the cluster from the capturer's artifacts once per `make restore`, remembering how it went for the other members. */
async function restoreOnce(ctx: RestoreContext<CassandraOptions>, capturer: string, artifacts: Artifact[]): Promise<string[]> {
  const key = restoredKey(ctx.runDir, capturer, ctx.dryRun);
  const restored = ctx.scope.get(restoredClusters);
  try {
    const lines = await restoreCluster(ctx, artifacts);
    restored.set(key, undefined);
    return lines;
  } catch (error) {
    restored.set(key, messageOf(error));
    throw error;
  }
}

/** The record of the service that captured this member's cluster in the same run. */
async function capturerRecord(ctx: RestoreContext<unknown>): Promise<{ name: string; artifacts: Artifact[] }> {
  const capturedWith = typeof ctx.record.facts?.capturedWith === "string" ? (ctx.record.facts.capturedWith as string) : undefined;
  const manifest = await readManifest(ctx.runDir);
  const record = manifest.services.find(
    (candidate) =>
      candidate.status === "ok" &&
      candidate.strategy === "cassandra" &&
      (capturedWith ? candidate.name === capturedWith : schemaFactsOf(candidate.artifacts)?.services.includes(ctx.serviceName) && candidate.name !== ctx.serviceName),
  );
  if (!record) throw new Error(`run ${manifest.runId} has no backup of the cassandra cluster of ${ctx.serviceName}${capturedWith ? ` (captured with ${capturedWith})` : ""}`);
  return record;
}

const selectedBy = (artifact: Artifact, volume: string | undefined) => !volume || (Array.isArray(artifact.facts?.selectors) && (artifact.facts.selectors as string[]).includes(volume));

export const cassandraStrategy: Strategy<CassandraOptions> = {
  kind: "cassandra",
  clustered: true,
  options: cassandraOptions,

  detect(service) {
    return isCassandraImage(service.image);
  },

  async openSession(ctx) {
    const known = memberOf(ctx);
    if (known?.member) {
      if (known.run.error !== undefined) failMember(ctx, known.run);
      log.info(`${ctx.service.name}: part of cassandra cluster ${known.run.cluster.name}, captured with ${known.run.capturer}`);
      return hotSession(async () => [], { facts: { cassandraCluster: known.run.cluster.name, capturedWith: known.run.capturer } });
    }
    // The service's own node's JMX client starts while its ring is discovered (each a process start).
    const ownNode = runningNodeOf(ctx.service);
    const early = ownNode ? JmxSession.open(ownNode) : undefined;
    const endEarly = async () => void (await early?.then((session) => session.close())); // idempotent
    let cluster: Cluster;
    try {
      cluster = await discoverCluster(ctx.config, ctx.project, ctx.service);
    } catch (error) {
      await endEarly();
      throw asStepError("prepare", ctx.service.name, error);
    }
    if (cluster.services.length > 1) log.info(`${ctx.service.name}: cassandra cluster ${cluster.name}: services ${cluster.services.join(", ")} (${cluster.foundBy === "ring" ? "found in one ring" : "by the cluster label"}), captured together by ${ctx.service.name}`);
    const run: ClusterRun = { capturer: ctx.service.name, cluster };
    ctx.scope.get(clusterRuns).set(cluster.name, run);
    const facts = { cassandraCluster: cluster.name, capturedWith: ctx.service.name, nodes: cluster.nodes.map((node) => node.key), services: cluster.services, foundBy: cluster.foundBy };
    // The tag is the same on every node, and recognisable if a killed run leaves it. It names the
    // run, or for an incremental store the project: the snapshot's paths then stay the same from
    // run to run and unchanged SSTables are not read again.
    const tag = ctx.store.incremental ? `composure-${ctx.project.name}` : `composure-${path.basename(ctx.runDir)}`;
    // Into the journal first: a run killed from here on leaves the tag for the next command to clear.
    const strikeOff = await ctx.journal.note(cassandraStrategy.kind, ctx.service.name, { tag, nodes: cluster.nodes.map((node) => ({ id: node.container.id, key: node.key })) }).catch(async (error: unknown) => {
      await endEarly();
      throw error;
    });
    const target = { helperImage: ctx.helperImage, project: ctx.project.name, store: ctx.store };
    let snapshot: Snapshot;
    let helpers: NodeHelpers | undefined; // the nodes' capture helpers start while the snapshot is taken
    try {
      helpers = await beginNodeHelpers(cluster.nodes, target);
      snapshot = await takeSnapshot(cluster, { keyspaces: ctx.options.keyspaces, excludeKeyspaces: ctx.options.exclude_keyspaces }, tag, await early);
    } catch (error) {
      await helpers?.close();
      await endEarly();
      await strikeOff(); // takeSnapshot cleared what it made
      run.error = messageOf(error);
      // The record still names the cluster it was to capture.
      throw new SessionOpenError(asStepError("prepare", ctx.service.name, error), facts);
    }
    const nodeHelpers = helpers;
    const capture = async () => {
      try {
        const started = performance.now();
        const result = await captureSnapshot(snapshot, target, nodeHelpers);
        const seconds = (performance.now() - started) / 1000;
        const stored = result.artifacts.reduce((sum, artifact) => sum + artifact.bytes, 0);
        log.info(`${ctx.service.name}: cassandra cluster ${cluster.name}: snapshot ${formatSeconds(snapshot.seconds)}, capture ${formatSeconds(seconds)}: ${formatBytes(result.rawBytes)} of SSTables stored as ${formatBytes(stored)} (${formatBytes(result.rawBytes / Math.max(seconds, 0.001))}/s)`);
        return result.artifacts;
      } catch (error) {
        run.error = messageOf(error);
        throw asStepError("capture", ctx.service.name, error);
      }
    };
    const release = async () => {
      try {
        await nodeHelpers.close();
        await snapshot.clear();
        await strikeOff();
      } catch (error) {
        run.error ??= messageOf(error);
        throw error;
      }
    };
    return hotSession(capture, { release, facts });
  },

  undoLeftover: clearLeftoverTag,

  async restore(ctx, artifacts) {
    try {
      if (schemaFactsOf(ctx.record.artifacts)) {
        // The capturer: its artifacts are the whole cluster's.
        if (artifacts.length === 0) return [];
        return await restoreOnce(ctx, ctx.record.name, artifacts);
      }
      const capturer = await capturerRecord(ctx);
      const key = restoredKey(ctx.runDir, capturer.name, ctx.dryRun);
      const restored = ctx.scope.get(restoredClusters);
      if (restored.has(key)) {
        const error = restored.get(key);
        if (error !== undefined) throw new Error(`not restored: it is part of the cassandra cluster restored with ${capturer.name}, whose restore failed (see there)`);
        return [`${ctx.dryRun ? "would be restored" : "restored"} with ${capturer.name} (one backup of the whole cassandra cluster)`];
      }
      const selected = capturer.artifacts.filter((artifact) => selectedBy(artifact, ctx.volume));
      if (selected.length === 0) return [];
      if (!ctx.dryRun) log.info(`${ctx.serviceName}: captured with ${capturer.name}: restoring the whole cassandra cluster`);
      const lines = await restoreOnce(ctx, capturer.name, selected);
      return [`captured with ${capturer.name}: the whole cluster is restored`, ...lines];
    } catch (error) {
      throw asStepError("restore", ctx.serviceName, error);
    }
  },

  probe(ctx, recorded) {
    return probeCassandra(ctx, recorded);
  },
};

// Restoring a Cassandra cluster backup into the running cluster, node by node: each node gets the
// SSTables that it owned at backup time (matched by node name, `<service>-<number>`).
//
//   1. check: every backed-up node has a running counterpart and no other node exists; the sha256
//      of each archive is verified while it is staged (step 2), before anything is changed;
//   2. stage: a helper extracts the node's archive into `<volume>/composure-restore/<run>/` of
//      that node's data volume, owned like the data directory (nodetool import runs inside the
//      server, which must be able to write there);
//   3. rescue (unless NO_RESCUE=1): a snapshot of the keyspaces being restored, captured into the
//      rescue run like any backup, so the restore itself can be undone;
//   4. schema: keyspaces, types and tables that are missing are created from schema.cql (replication
//      and options as in the backup, dropped columns replayed so old SSTables load);
//   5. TRUNCATE the restored tables that existed (Cassandra's auto_snapshot keeps the replaced data
//      on each node as `truncated-<time>-<table>` snapshots: clear them when no longer needed);
//   6. `nodetool import --copy-data <ks> <table> <dirs>` on every node (nodes in parallel), which
//      verifies the SSTables and that their tokens belong to the node, and rebuilds indexes;
//   7. staging removed (always), row counts compared with the facts of the backup (CL ALL).
//
// Topology: this is a restore to the SAME topology (same nodes, same tokens). A cluster with a
// different number of nodes, other node names or other tokens is refused up front, or (tokens
// only) warned about, and `nodetool import` then rejects SSTables holding tokens the node does
// not own. For a different topology (a new cluster, a scaled one, another data center) load every
// node's archive with `sstableloader -d <host> <dir>/<ks>/<table>` from the extracted archives:
// it streams each row to whichever nodes own it now. That is not automated here (the fixture has
// no sstableloader); materialized views are not imported (rebuild them by recreating the view).
import { createHash } from "node:crypto";
import path from "node:path";
import { extractArchive } from "../../archive/tar-transfer.ts";
import { readDecompressed } from "../../archive/files.ts";
import type { Artifact } from "../../catalog/manifest.ts";
import type { ServiceInfo } from "../../compose/discover.ts";
import type { MountInfo } from "../../docker/containers.ts";
import { messageOf } from "../../errors.ts";
import { formatBytes, formatSeconds, log } from "../../log.ts";
import type { RestoreContext } from "../types.ts";
import { withHelper } from "../../docker/helper.ts";
import { formatCount } from "../shared/in-container.ts";
import { jsonRows, planSchema, tableKey } from "./cql.ts";
import { clusterOf, cqlsh, describeNode, nodetool, onEveryNode, requireRunning, type CassandraNode } from "./nodes.ts";
import { captureSnapshot, countRows, qualifiedName, stagingDirName, takeSnapshot, type ClusterFacts, type NodeFacts } from "./snapshot.ts";


const isSchemaArtifact = (artifact: Artifact) => artifact.facts?.engine === "cassandra" && artifact.facts?.kind === "schema";

export function schemaFactsOf(artifacts: Artifact[]): ClusterFacts | undefined {
  return artifacts.find(isSchemaArtifact)?.facts as unknown as ClusterFacts | undefined;
}

/** The tables a restore covers: all of the backup's, or those VOLUME= (a keyspace or keyspace.table) names. */
export function selectTables(facts: ClusterFacts, volume: string | undefined): string[] {
  if (!volume) return facts.tableNames;
  return facts.tableNames.filter((key) => key === volume || key.slice(0, key.indexOf(".")) === volume);
}

interface NodePlan {
  node: CassandraNode;
  artifact: Artifact;
  facts: NodeFacts;
  /** The mount of the node's volume that holds the staging directory. */
  mount: MountInfo;
  /** The staging directory, as a path in the node's container. */
  staging: string;
  tokensChanged: boolean;
}

/** The running service of the cluster in the target project (the restoring one, or any member). */
function clusterService(ctx: RestoreContext<unknown>, facts: ClusterFacts): ServiceInfo {
  const service = ctx.service ?? ctx.project.services.find((candidate) => facts.services.includes(candidate.name));
  if (!service) {
    throw new Error(`no service of cassandra cluster ${facts.cluster} (${facts.services.join(", ")}) runs in project ${ctx.project.name}: start the cluster (docker compose up -d), then restore again; a restore loads into running nodes`);
  }
  return service;
}

function stagingMount(node: CassandraNode, dataDirs: string[]): MountInfo {
  const writable = node.container.mounts.filter((mount) => !mount.readOnly);
  const holder = (dir: string) =>
    writable.filter((mount) => dir === mount.destination || dir.startsWith(`${mount.destination.replace(/\/$/, "")}/`)).sort((a, b) => b.destination.length - a.destination.length)[0];
  const mount = dataDirs.map(holder).find(Boolean);
  if (!mount) throw new Error(`${describeNode(node)}: none of its writable volumes holds ${dataDirs.join(", ")} (the data directory at backup time): restore it to a node laid out like the backed-up one`);
  return mount;
}

export async function restoreCluster(ctx: RestoreContext<unknown>, artifacts: Artifact[]): Promise<string[]> {
  const schemaArtifact = artifacts.find(isSchemaArtifact);
  if (!schemaArtifact) throw new Error("the cassandra backup has no schema.cql artifact: it cannot be restored");
  const facts = schemaArtifact.facts as unknown as ClusterFacts;
  const tables = selectTables(facts, ctx.volume);
  if (tables.length === 0) throw new Error(`VOLUME=${ctx.volume} names no keyspace or table of the backup (it has: ${facts.tableNames.join(", ")})`);
  const keyspaces = [...new Set(tables.map((key) => key.slice(0, key.indexOf("."))))];
  const nodeArtifacts = artifacts.filter((artifact) => artifact.facts?.engine === "cassandra" && artifact.facts?.kind === "node");

  // 1. Same topology: the backed-up nodes, all running, and no others.
  const cluster = clusterOf(ctx.config, ctx.project, clusterService(ctx, facts));
  const backedUp = facts.nodes;
  const current = cluster.nodes.map((node) => node.key);
  const missing = backedUp.filter((key) => !current.includes(key));
  const extra = current.filter((key) => !backedUp.includes(key));
  if (missing.length || extra.length) {
    throw new Error(
      `the running cluster ${cluster.name} (${current.join(", ") || "no nodes"}) is not the backed-up one (${backedUp.join(", ")})${missing.length ? `: missing ${missing.join(", ")}` : ""}${extra.length ? `${missing.length ? ";" : ":"} not in the backup ${extra.join(", ")}` : ""}. A per-node restore needs the same nodes; for another topology load the archives with sstableloader (see the cassandra strategy's README)`,
    );
  }
  const running = await onEveryNode(cluster.nodes, requireRunning);
  const plans: NodePlan[] = [];
  for (const node of running) {
    const artifact = nodeArtifacts.find((candidate) => (candidate.facts as unknown as NodeFacts).node === node.key);
    if (!artifact) throw new Error(`the backup has no archive of ${describeNode(node)}`);
    const nodeFacts = artifact.facts as unknown as NodeFacts;
    const mount = stagingMount(node, nodeFacts.dataDirs);
    plans.push({ node, artifact, facts: nodeFacts, mount, staging: path.posix.join(mount.destination, stagingDirName, path.basename(ctx.runDir)), tokensChanged: false });
  }
  const identities = await onEveryNode(running, (node) => cqlshIdentity(node));
  for (const [index, plan] of plans.entries()) {
    plan.tokensChanged = identities[index] !== plan.facts.identity.tokensSha256;
    if (plan.tokensChanged) log.warn(`${describeNode(plan.node)} owns other tokens than at backup time (it was replaced or the ring changed): nodetool import will reject SSTables with tokens it does not own`);
  }

  if (ctx.dryRun) {
    const counted = tables.filter((key) => facts.counts[key] !== undefined).reduce((sum, key) => sum + facts.counts[key], 0);
    return [
      `would restore cassandra cluster ${facts.cluster} from ${path.posix.dirname(schemaArtifact.path)}/ (schema.cql and ${facts.nodes.length} node archives): ${tables.length} table(s) of ${keyspaces.join(", ")} (${formatCount(counted)} rows counted at backup time)`,
      `  recreate missing keyspaces/tables from schema.cql, TRUNCATE the restored tables${ctx.rescue ? " after a rescue snapshot of them" : ""}, then nodetool import on ${plans.map((plan) => plan.node.key).join(", ")}${plans.some((plan) => plan.tokensChanged) ? " (warning: tokens changed since the backup)" : ""}`,
    ];
  }

  const started = performance.now();
  const schemaText = await readText(path.join(ctx.runDir, schemaArtifact.path), schemaArtifact);
  const lines: string[] = [];
  const timed = async <T>(label: string, work: () => Promise<T>): Promise<T> => {
    const begun = performance.now();
    const result = await work();
    log.info(`${ctx.serviceName}: ${label} in ${formatSeconds((performance.now() - begun) / 1000)}`);
    return result;
  };
  const first = running[0];
  try {
    // 2. Stage every node's files first: a corrupt archive stops the restore before any change.
    await timed("staged every node's archive", async () => {
      for (const plan of plans) await stageNode(ctx, plan);
    });
    // 3. Rescue copy of what is about to be replaced.
    if (ctx.rescue) {
      const rescued = await timed("kept a rescue copy", () => keepRescueCopy(ctx, cluster, first, keyspaces));
      if (rescued) lines.push(rescued);
    }
    // 4. Schema where missing.
    const existing = await existingSchema(first, keyspaces);
    const schemaPlan = planSchema(schemaText, existing, new Set(tables));
    if (schemaPlan.statements.length) {
      await timed("schema checked", () => cqlsh(first, `${schemaPlan.statements.join("\n")}\n`, { strict: true, timeoutSeconds: 600 }));
      const created = [...schemaPlan.createdKeyspaces.map((keyspace) => `keyspace ${keyspace}`), ...schemaPlan.createdTables.map((key) => `table ${key}`)];
      if (created.length) lines.push(`recreated ${created.join(", ")} from schema.cql`);
    }
    // 5. Empty the tables that existed.
    const toTruncate = tables.filter((key) => existing.tables.has(key));
    if (toTruncate.length) {
      const statements = toTruncate.map((key) => `TRUNCATE ${qualifiedName(key)};`).join("\n");
      await timed(`truncated ${toTruncate.length} table(s)`, () => cqlsh(first, `CONSISTENCY ALL;\n${statements}\n`, { strict: true, timeoutSeconds: 600 }));
      lines.push(`truncated ${toTruncate.join(", ")} (Cassandra keeps the replaced data as truncated-* snapshots on each node)`);
    }
    // 6. Import on every node at once (tables one after the other on each node).
    const imported = await timed("imported on every node", () => onEveryNode(plans.map((plan) => plan.node), (node) => importNode(plans.find((plan) => plan.node.key === node.key)!, tables)));
    lines.push(...imported);
  } finally {
    await Promise.allSettled(plans.map((plan) => removeStaging(ctx, plan)));
  }
  const seconds = (performance.now() - started) / 1000;
  lines.push(await timed("counted rows", () => checkCounts(first, facts, tables, seconds)));
  return lines;
}

/** sha256 of the node's sorted tokens, as recorded at backup time. */
async function cqlshIdentity(node: CassandraNode): Promise<string> {
  const result = await cqlsh(node, "SELECT JSON tokens FROM system.local;\n", { strict: true });
  const [row] = jsonRows(result.stdout);
  const tokens = (Array.isArray(row?.tokens) ? (row.tokens as unknown[]) : []).map(String).sort();
  return createHash("sha256").update(tokens.join(",")).digest("hex");
}

async function readText(file: string, artifact: Artifact): Promise<string> {
  const source = readDecompressed(file, artifact, artifact);
  const chunks: Buffer[] = [];
  for await (const chunk of source.stream) chunks.push(chunk as Buffer);
  await source.done;
  return Buffer.concat(chunks).toString("utf8");
}

async function existingSchema(node: CassandraNode, keyspaces: string[]): Promise<{ keyspaces: Set<string>; tables: Set<string> }> {
  const list = keyspaces.map((keyspace) => `'${keyspace.replace(/'/g, "''")}'`).join(", ");
  const result = await cqlsh(
    node,
    `SELECT JSON keyspace_name FROM system_schema.keyspaces WHERE keyspace_name IN (${list});\nSELECT JSON keyspace_name, table_name FROM system_schema.tables WHERE keyspace_name IN (${list});\nSELECT JSON keyspace_name, view_name FROM system_schema.views WHERE keyspace_name IN (${list});\n`,
    { strict: true },
  );
  const present = { keyspaces: new Set<string>(), tables: new Set<string>() };
  for (const row of jsonRows(result.stdout)) {
    const keyspace = String(row.keyspace_name);
    present.keyspaces.add(keyspace);
    const name = row.table_name ?? row.view_name;
    if (name !== undefined) present.tables.add(tableKey(keyspace, String(name)));
  }
  return present;
}

/** Extracts the node's archive into its staging directory (checksum verified on the way), owned like the data. */
async function stageNode(ctx: RestoreContext<unknown>, plan: NodePlan): Promise<void> {
  const archive = path.join(ctx.runDir, plan.artifact.path);
  const inHelper = `/n${plan.staging}`;
  const dataDir = `/n${plan.facts.dataDirs[0]}`;
  await withHelper(ctx.helperImage, ctx.project.name, [`${plan.mount.source}:/n${plan.mount.destination}`], async (helper, pipe) => {
    const prepared = await helper.run(["sh", "-c", 'set -e; rm -rf -- "$1"; mkdir -p -- "$1"; stat -c %u:%g -- "$2" 2>/dev/null || stat -c %u:%g -- "$3"', "sh", inHelper, dataDir, `/n${plan.mount.destination}`]);
    if (prepared.exitCode !== 0) throw new Error(`${describeNode(plan.node)}: cannot prepare ${plan.staging}: ${prepared.stderr.trim()}`);
    const owner = prepared.stdout.trim().split("\n").at(-1)!;
    const started = performance.now();
    await extractArchive(helper, pipe, archive, inHelper, `${plan.node.key}: stage ${path.basename(archive)}`, plan.artifact);
    const parent = path.posix.dirname(inHelper);
    const owned = await helper.run(["sh", "-c", 'chown -R "$1" -- "$2" && chown "$1" -- "$3"', "sh", owner, inHelper, parent]);
    if (owned.exitCode !== 0) throw new Error(`${describeNode(plan.node)}: cannot hand ${plan.staging} to ${owner}: ${owned.stderr.trim()}`);
    log.info(`${plan.node.key}: staged ${formatBytes(plan.facts.rawBytes)} in ${plan.staging} in ${formatSeconds((performance.now() - started) / 1000)}`);
  });
}

async function removeStaging(ctx: RestoreContext<unknown>, plan: NodePlan): Promise<void> {
  const inHelper = `/n${plan.staging}`;
  await withHelper(ctx.helperImage, ctx.project.name, [`${plan.mount.source}:/n${plan.mount.destination}`], async (helper) => {
    const removed = await helper.run(["sh", "-c", 'rm -rf -- "$1"; rmdir -- "$2" 2>/dev/null; true', "sh", inHelper, path.posix.dirname(inHelper)]);
    if (removed.exitCode !== 0) log.warn(`${describeNode(plan.node)}: could not remove ${plan.staging}: ${removed.stderr.trim()}`);
  }).catch((error: unknown) => log.warn(`${describeNode(plan.node)}: could not remove ${plan.staging}: ${messageOf(error)}`));
}

/** Parallel nodetool imports per node: each is a JVM start of a few seconds, mostly waiting. */
const importsPerNode = 2;

async function importNode(plan: NodePlan, tables: string[]): Promise<string> {
  const queue = tables.filter((key) => plan.facts.tables[key]); // a table without SSTables on this node: nothing to load
  const importOne = async (key: string) => {
    const table = plan.facts.tables[key];
    const dirs = table.dirs.map((dir) => path.posix.join(plan.staging, dir));
    const dot = key.indexOf(".");
    const output = await nodetool(plan.node, ["import", "--copy-data", key.slice(0, dot), key.slice(dot + 1), ...dirs], 3_600_000);
    if (/failed to import/i.test(output)) throw new Error(`nodetool import of ${key} on ${describeNode(plan.node)} failed: ${output.trim().split("\n").slice(0, 3).join(" | ")} (see the node's log)`);
  };
  const workers = Array.from({ length: Math.min(importsPerNode, queue.length) }, async () => {
    for (let key = queue.shift(); key !== undefined; key = queue.shift()) await importOne(key);
  });
  await Promise.all(workers);
  const imported = tables.filter((key) => plan.facts.tables[key]);
  const files = imported.reduce((sum, key) => sum + plan.facts.tables[key].files, 0);
  const bytes = imported.reduce((sum, key) => sum + plan.facts.tables[key].bytes, 0);
  return `${plan.node.key}: imported ${imported.length} table(s), ${files} files, ${formatBytes(bytes)}${plan.tokensChanged ? " (tokens changed since the backup)" : ""}`;
}

async function checkCounts(node: CassandraNode, facts: ClusterFacts, tables: string[], seconds: number): Promise<string> {
  const recorded = tables.filter((key) => facts.counts[key] !== undefined);
  const { counts, failed } = await countRows(node, recorded, ["ALL", "ALL"]);
  const differences = recorded.filter((key) => counts[key] !== undefined && counts[key] !== facts.counts[key]).map((key) => `${key} has ${formatCount(counts[key])} rows, recorded ${formatCount(facts.counts[key])}`);
  const rows = Object.values(counts).reduce((sum, count) => sum + count, 0);
  const summary = `restored ${tables.length} table(s) of ${[...new Set(tables.map((key) => key.slice(0, key.indexOf("."))))].join(", ")} in ${formatSeconds(seconds)}: ${formatCount(rows)} rows in the counted tables`;
  if (differences.length) {
    log.warn(`cassandra cluster ${facts.cluster}: row counts differ from the backup's facts (written to since, or the backup ran under writes): ${differences.join("; ")}`);
    return `${summary} (differs from the recorded counts: ${differences.join("; ")})`;
  }
  if (failed.length) return `${summary} (could not count ${failed.join(", ")})`;
  return `${summary}, as recorded at backup time${recorded.length < tables.length ? ` (${tables.length - recorded.length} large table(s) have estimates only)` : ""}`;
}

/** A snapshot of the keyspaces being restored, captured into the rescue run (restorable like any run). */
async function keepRescueCopy(ctx: RestoreContext<unknown>, cluster: ReturnType<typeof clusterOf>, first: CassandraNode, keyspaces: string[]): Promise<string | undefined> {
  const existing = await existingSchema(first, keyspaces);
  const present = keyspaces.filter((keyspace) => existing.keyspaces.has(keyspace));
  if (present.length === 0) return undefined;
  const rescue = ctx.rescue!;
  const dir = await rescue.dir(ctx.serviceName);
  const runDir = path.dirname(dir);
  const snapshot = await takeSnapshot(cluster, { keyspaces: present }, `composure-${path.basename(runDir)}`);
  try {
    const { artifacts } = await captureSnapshot(snapshot, { helperImage: ctx.helperImage, project: ctx.project.name, level: ctx.config.compression.level, dir, runDir });
    for (const artifact of artifacts) rescue.add(ctx.serviceName, artifact, "cassandra");
  } finally {
    await snapshot.clear();
  }
  return `kept a rescue copy of ${present.join(", ")} (all nodes) in ${dir}`;
}

// Restoring a Cassandra cluster backup into the running cluster, whatever its ring looks like now.
//
//   1. plan: the running cluster is found like at backup time (the ring, or the cluster label);
//      the load path is chosen by comparing it with the backup (see chooseLoadPath); the sha256 of
//      each archive is verified while it is staged (step 2), before anything is changed;
//   2. stage: a helper extracts each node archive into `<volume>/composure-restore/<run>/<node>/`
//      of the data volume of the node that loads it, owned like the data directory;
//   3. rescue (unless NO_RESCUE=1): a snapshot of the keyspaces being restored, captured into the
//      rescue run like any backup, so the restore itself can be undone;
//   4. schema: keyspaces, types and tables that are missing are created from schema.cql (replication
//      and options as in the backup, dropped columns replayed so old SSTables load);
//   5. TRUNCATE the restored tables that existed (Cassandra's auto_snapshot keeps the replaced data
//      on each node as `truncated-<time>-<table>` snapshots: clear them when no longer needed);
//   6. load, on every loading node at once:
//      - same ring (the backed-up nodes, each with the tokens it had): `nodetool import
//        --copy-data`, the fastest path: each node takes its own SSTables, no streaming;
//      - any other ring (a fresh ring after a disaster, a replaced node, another node count):
//        `sstableloader`, Cassandra's bulk loader, run inside a node on every archive, streams
//        each partition to the nodes that own it now, at the keyspace's replication factor;
//   7. staging removed (always), row counts compared with the facts of the backup (CL ALL).
//
// Materialized views are not loaded (rebuild them by recreating the view).
import { createHash } from "node:crypto";
import path from "node:path";
import type { Artifact } from "../../catalog/manifest.ts";
import type { ServiceInfo } from "../../compose/discover.ts";
import type { MountInfo } from "../../docker/containers.ts";
import { messageOf } from "../../errors.ts";
import { formatBytes, formatSeconds, log } from "../../log.ts";
import type { RestoreContext } from "../types.ts";
import { withHelper } from "../../docker/helper.ts";
import { formatCount } from "../shared/in-container.ts";
import { jsonRows, planSchema, tableKey } from "./cql.ts";
import { cqlsh, describeNode, discoverCluster, nodetool, onEveryNode, requireRunning, ringAddressesOf, sstableloader, type CassandraNode, type Cluster } from "./nodes.ts";
import { beginNodeHelpers, captureSnapshot, countRows, qualifiedName, stagingDirName, takeSnapshot, type ClusterFacts, type NodeFacts } from "./snapshot.ts";

const isSchemaArtifact = (artifact: Artifact) => artifact.facts?.engine === "cassandra" && artifact.facts?.kind === "schema";

export function schemaFactsOf(artifacts: Artifact[]): ClusterFacts | undefined {
  return artifacts.find(isSchemaArtifact)?.facts as unknown as ClusterFacts | undefined;
}

/** Tables whose rows were counted at backup time: exactly, or within bounds (written to during the snapshot). */
export function countedTables(facts: ClusterFacts, tables: string[]): string[] {
  return tables.filter((key) => facts.counts[key] !== undefined || facts.bounds?.[key] !== undefined);
}

/** Each counted table whose count now differs from the recorded one, or lies outside its recorded bounds. */
export function countDifferences(facts: ClusterFacts, counts: Record<string, number>, tables: string[]): string[] {
  return countedTables(facts, tables).flatMap((key) => {
    const bounds = facts.bounds?.[key];
    const recorded = bounds ? `between ${formatCount(bounds[0])} and ${formatCount(bounds[1])} rows (written to during the snapshot)` : `${formatCount(facts.counts[key])} rows`;
    if (counts[key] === undefined) return [`table ${key}: could not be counted (recorded ${recorded})`];
    const matches = bounds ? counts[key] >= bounds[0] && counts[key] <= bounds[1] : counts[key] === facts.counts[key];
    return matches ? [] : [`table ${key}: ${formatCount(counts[key])} rows, recorded ${recorded.replace(/ rows/, "")}`];
  });
}

/** The tables a restore covers: all of the backup's, or those VOLUME= (a keyspace or keyspace.table) names. */
export function selectTables(facts: ClusterFacts, volume: string | undefined): string[] {
  if (!volume) return facts.tableNames;
  return facts.tableNames.filter((key) => key === volume || key.slice(0, key.indexOf(".")) === volume);
}

/** One node archive of the backup and the running node that loads it. */
interface NodePlan {
  /** The node loading the archive: the backed-up node itself on the import path. */
  node: CassandraNode;
  artifact: Artifact;
  /** Facts of the archive's node at backup time. */
  facts: NodeFacts;
  /** The mount of the loading node's volume that holds the staging directory. */
  mount: MountInfo;
  /** The staging directory, as a path in the loading node's container. */
  staging: string;
}

/** How the SSTables go in: each node imports its own, or the bulk loader streams them to their owners. */
interface LoadPath {
  kind: "import" | "sstableloader";
  /** Why this path, for the log and the dry run. */
  reason: string;
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

/**
 * `nodetool import` needs the very ring of the backup: the same nodes, each owning the tokens it
 * had, or it rejects SSTables holding tokens the node does not own. Any other ring (a fresh one
 * always draws new tokens) is loaded with the bulk loader.
 */
async function chooseLoadPath(running: CassandraNode[], backedUp: NodeFacts[]): Promise<LoadPath> {
  const current = running.map((node) => node.key);
  const missing = backedUp.map((facts) => facts.node).filter((key) => !current.includes(key));
  const added = current.filter((key) => !backedUp.some((facts) => facts.node === key));
  if (missing.length || added.length) {
    const changes = [missing.length ? `${missing.join(", ")} gone` : "", added.length ? `${added.join(", ")} new` : ""].filter(Boolean).join("; ");
    return { kind: "sstableloader", reason: `the ring has other nodes than at backup time (${changes})` };
  }
  const tokens = await onEveryNode(running, tokensSha256);
  const moved = running.filter((node, index) => tokens[index] !== backedUp.find((facts) => facts.node === node.key)!.identity.tokensSha256).map((node) => node.key);
  if (moved.length) return { kind: "sstableloader", reason: `${moved.join(", ")} own${moved.length === 1 ? "s" : ""} other tokens than at backup time (a new ring after a disaster, or a replaced node)` };
  return { kind: "import", reason: "the same nodes own the same tokens as at backup time" };
}

/** Each archive to its own node on the import path; to the node of the same name, else in turn, for the loader. */
function planNodes(ctx: RestoreContext<unknown>, running: CassandraNode[], archives: { artifact: Artifact; facts: NodeFacts }[]): NodePlan[] {
  return archives.map(({ artifact, facts }, index) => {
    const node = running.find((candidate) => candidate.key === facts.node) ?? running[index % running.length];
    const mount = stagingMount(node, facts.dataDirs);
    return { node, artifact, facts, mount, staging: path.posix.join(mount.destination, stagingDirName, path.basename(ctx.runDir), facts.node) };
  });
}

export async function restoreCluster(ctx: RestoreContext<unknown>, artifacts: Artifact[]): Promise<string[]> {
  const schemaArtifact = artifacts.find(isSchemaArtifact);
  if (!schemaArtifact) throw new Error("the cassandra backup has no schema.cql artifact: it cannot be restored");
  const facts = schemaArtifact.facts as unknown as ClusterFacts;
  const tables = selectTables(facts, ctx.volume);
  if (tables.length === 0) throw new Error(`VOLUME=${ctx.volume} names no keyspace or table of the backup (it has: ${facts.tableNames.join(", ")})`);
  const keyspaces = [...new Set(tables.map((key) => key.slice(0, key.indexOf("."))))];
  const archives = artifacts.filter((artifact) => artifact.facts?.engine === "cassandra" && artifact.facts?.kind === "node").map((artifact) => ({ artifact, facts: artifact.facts as unknown as NodeFacts }));
  const unarchived = facts.nodes.filter((key) => !archives.some((archive) => archive.facts.node === key));
  if (unarchived.length) throw new Error(`the backup has no archive of node${unarchived.length > 1 ? "s" : ""} ${unarchived.join(", ")}`);

  // 1. The ring as it runs now, and the way in.
  const cluster = await discoverCluster(ctx.config, ctx.project, clusterService(ctx, facts));
  const running = await onEveryNode(cluster.nodes, requireRunning);
  const loadPath = await chooseLoadPath(running, archives.map((archive) => archive.facts));
  const plans = planNodes(ctx, running, archives);
  const how = loadPath.kind === "import" ? `nodetool import on ${plans.map((plan) => plan.node.key).join(", ")}` : `sstableloader on ${[...new Set(plans.map((plan) => plan.node.key))].join(", ")} (streams every partition to the nodes that own it now)`;

  if (ctx.dryRun) {
    const counted = tables.filter((key) => facts.counts[key] !== undefined).reduce((sum, key) => sum + facts.counts[key], 0);
    return [
      `would restore cassandra cluster ${facts.cluster} from ${path.posix.dirname(schemaArtifact.path)}/ (schema.cql and ${facts.nodes.length} node archives): ${tables.length} table(s) of ${keyspaces.join(", ")} (${formatCount(counted)} rows counted at backup time), into the running nodes ${running.map((node) => node.key).join(", ")}`,
      `  recreate missing keyspaces/tables from schema.cql, TRUNCATE the restored tables${ctx.rescue ? " after a rescue snapshot of them" : ""}, then ${how}: ${loadPath.reason}`,
    ];
  }
  log.info(`${ctx.serviceName}: loading with ${loadPath.kind}: ${loadPath.reason}`);

  const started = performance.now();
  const schemaText = await ctx.reader.readText(schemaArtifact);
  const lines: string[] = [`loaded with ${loadPath.kind}: ${loadPath.reason}`];
  const timed = async <T>(label: string, work: () => Promise<T>): Promise<T> => {
    const begun = performance.now();
    const result = await work();
    log.info(`${ctx.serviceName}: ${label} in ${formatSeconds((performance.now() - begun) / 1000)}`);
    return result;
  };
  const first = running[0];
  try {
    // 2. Stage every archive first: a corrupt archive stops the restore before any change.
    await timed("staged every node's archive", async () => {
      for (const plan of plans) await stageNode(ctx, plan, loadPath);
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
    // 6. Load on every loading node at once (tables a few at a time on each node).
    const load = loadPath.kind === "import" ? importArchive : streamArchive(cluster);
    const loaded = await timed(`loaded every archive (${loadPath.kind})`, () => inTurnsPerNode(plans, load, tables));
    lines.push(...loaded);
  } finally {
    await Promise.allSettled(plans.map((plan) => removeStaging(ctx, plan)));
  }
  const seconds = (performance.now() - started) / 1000;
  lines.push(await timed("counted rows", () => checkCounts(first, facts, tables, seconds)));
  return lines;
}

/** sha256 of the node's sorted tokens, as recorded at backup time. */
async function tokensSha256(node: CassandraNode): Promise<string> {
  const result = await cqlsh(node, "SELECT JSON tokens FROM system.local;\n", { strict: true });
  const [row] = jsonRows(result.stdout);
  const tokens = (Array.isArray(row?.tokens) ? (row.tokens as unknown[]) : []).map(String).sort();
  return createHash("sha256").update(tokens.join(",")).digest("hex");
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

/** Extracts the archive into its staging directory (checksum verified on the way), laid out for its load path, owned like the data. */
async function stageNode(ctx: RestoreContext<unknown>, plan: NodePlan, loadPath: LoadPath): Promise<void> {
  const inHelper = `/n${plan.staging}`;
  const dataDir = `/n${plan.facts.dataDirs[0]}`;
  await withHelper(ctx.helperImage, ctx.project.name, [`${plan.mount.source}:/n${plan.mount.destination}`], async (helper, pipe) => {
    const prepared = await helper.run(["sh", "-c", 'set -e; rm -rf -- "$1"; mkdir -p -- "$1"; stat -c %u:%g -- "$2" 2>/dev/null || stat -c %u:%g -- "$3"', "sh", inHelper, dataDir, `/n${plan.mount.destination}`]);
    if (prepared.exitCode !== 0) throw new Error(`${describeNode(plan.node)}: cannot prepare ${plan.staging}: ${prepared.stderr.trim()}`);
    const owner = prepared.stdout.trim().split("\n").at(-1)!;
    const started = performance.now();
    await ctx.reader.extract(plan.artifact, helper, pipe, inHelper, `${plan.node.key}: stage ${plan.artifact.path}`);
    if (loadPath.kind === "sstableloader") await layOutForLoader(helper, plan);
    const staged = [path.posix.dirname(inHelper), path.posix.dirname(path.posix.dirname(inHelper))];
    const owned = await helper.run(["sh", "-c", 'owner=$1; shift; chown -R "$owner" -- "$1" && shift && chown "$owner" -- "$@"', "sh", owner, inHelper, ...staged]);
    if (owned.exitCode !== 0) throw new Error(`${describeNode(plan.node)}: cannot hand ${plan.staging} to ${owner}: ${owned.stderr.trim()}`);
    log.info(`${plan.node.key}: staged ${formatBytes(plan.facts.rawBytes)} of ${plan.facts.node} in ${plan.staging} in ${formatSeconds((performance.now() - started) / 1000)}`);
  });
}

/** The bulk loader reads one table from `<dir>/<keyspace>/<table>/`: move each table's SSTables there (no copy). */
async function layOutForLoader(helper: { run(argv: string[]): Promise<{ exitCode: number; stderr: string }> }, plan: NodePlan): Promise<void> {
  const moves = Object.entries(plan.facts.tables).flatMap(([key, table]) => table.dirs.flatMap((dir) => [`/n${path.posix.join(plan.staging, dir)}`, `/n${loaderDir(plan, key)}`]));
  const script = 'set -e; while [ $# -gt 0 ]; do mkdir -p -- "$2"; for f in "$1"/*; do [ -f "$f" ] || continue; case ${f##*/} in manifest.json|schema.cql) continue ;; esac; mv -- "$f" "$2/"; done; shift 2; done';
  const moved = await helper.run(["sh", "-c", script, "sh", ...moves]);
  if (moved.exitCode !== 0) throw new Error(`${describeNode(plan.node)}: cannot lay out ${plan.staging} for sstableloader: ${moved.stderr.trim()}`);
}

const loaderDir = (plan: NodePlan, key: string) => path.posix.join(plan.staging, "load", key.slice(0, key.indexOf(".")), key.slice(key.indexOf(".") + 1));

async function removeStaging(ctx: RestoreContext<unknown>, plan: NodePlan): Promise<void> {
  const inHelper = `/n${plan.staging}`;
  const run = path.posix.dirname(inHelper);
  await withHelper(ctx.helperImage, ctx.project.name, [`${plan.mount.source}:/n${plan.mount.destination}`], async (helper) => {
    const removed = await helper.run(["sh", "-c", 'rm -rf -- "$1"; rmdir -- "$2" "$3" 2>/dev/null; true', "sh", inHelper, run, path.posix.dirname(run)]);
    if (removed.exitCode !== 0) log.warn(`${describeNode(plan.node)}: could not remove ${plan.staging}: ${removed.stderr.trim()}`);
  }).catch((error: unknown) => log.warn(`${describeNode(plan.node)}: could not remove ${plan.staging}: ${messageOf(error)}`));
}

/**
 * Loads the plans, the nodes in parallel and each node's archives one after the other; within an
 * archive two tables at a time (each load is a JVM start of a few seconds, mostly waiting).
 */
async function inTurnsPerNode(plans: NodePlan[], load: (plan: NodePlan, tables: string[]) => Promise<string>, tables: string[]): Promise<string[]> {
  const nodes = [...new Set(plans.map((plan) => plan.node.key))];
  const perNode = await onEveryNode(
    nodes.map((key) => plans.find((plan) => plan.node.key === key)!.node),
    async (node) => {
      const lines: string[] = [];
      for (const plan of plans.filter((candidate) => candidate.node.key === node.key)) lines.push(await load(plan, tables));
      return lines;
    },
  );
  return perNode.flat();
}

const tablesAtOnce = 2;

/** Runs `work` on the archive's tables (those it has SSTables of), two at a time; returns a line of what was loaded. */
async function eachTable(plan: NodePlan, tables: string[], verb: string, work: (key: string) => Promise<void>): Promise<string> {
  const present = tables.filter((key) => plan.facts.tables[key]); // a table without SSTables on this node: nothing to load
  const queue = [...present];
  await Promise.all(
    Array.from({ length: Math.min(tablesAtOnce, queue.length) }, async () => {
      for (let key = queue.shift(); key !== undefined; key = queue.shift()) await work(key);
    }),
  );
  const files = present.reduce((sum, key) => sum + plan.facts.tables[key].files, 0);
  const bytes = present.reduce((sum, key) => sum + plan.facts.tables[key].bytes, 0);
  const from = plan.facts.node === plan.node.key ? "" : ` from ${plan.facts.node}'s archive`;
  return `${plan.node.key}: ${verb} ${present.length} table(s)${from}, ${files} files, ${formatBytes(bytes)}`;
}

/** `nodetool import --copy-data`: the node takes its own SSTables (and checks it owns their tokens). */
function importArchive(plan: NodePlan, tables: string[]): Promise<string> {
  return eachTable(plan, tables, "imported", async (key) => {
    const dirs = plan.facts.tables[key].dirs.map((dir) => path.posix.join(plan.staging, dir));
    const dot = key.indexOf(".");
    const output = await nodetool(plan.node, ["import", "--copy-data", key.slice(0, dot), key.slice(dot + 1), ...dirs], 3_600_000);
    if (/failed to import/i.test(output)) throw new Error(`nodetool import of ${key} on ${describeNode(plan.node)} failed: ${output.trim().split("\n").slice(0, 3).join(" | ")} (see the node's log)`);
  });
}

/** `sstableloader`: streams the archive's SSTables of each table to the nodes that own their tokens now. */
function streamArchive(cluster: Cluster): (plan: NodePlan, tables: string[]) => Promise<string> {
  return (plan, tables) => eachTable(plan, tables, "streamed", (key) => sstableloader(plan.node, ringAddressesOf(cluster, plan.node), loaderDir(plan, key)));
}

async function checkCounts(node: CassandraNode, facts: ClusterFacts, tables: string[], seconds: number): Promise<string> {
  const recorded = countedTables(facts, tables);
  const { counts, failed } = await countRows(node, recorded, ["ALL", "ALL"]);
  const differences = countDifferences(facts, counts, recorded.filter((key) => counts[key] !== undefined));
  const rows = Object.values(counts).reduce((sum, count) => sum + count, 0);
  const summary = `restored ${tables.length} table(s) of ${[...new Set(tables.map((key) => key.slice(0, key.indexOf("."))))].join(", ")} in ${formatSeconds(seconds)}: ${formatCount(rows)} rows in the counted tables`;
  if (differences.length) {
    log.warn(`cassandra cluster ${facts.cluster}: row counts differ from the backup's facts (written to since): ${differences.join("; ")}`);
    return `${summary} (differs from the recorded counts: ${differences.join("; ")})`;
  }
  if (failed.length) return `${summary} (could not count ${failed.join(", ")})`;
  const bounded = recorded.filter((key) => facts.bounds?.[key]).length;
  return `${summary}, as recorded at backup time${bounded ? ` (${bounded} table(s) written to during the snapshot: within the counts before and after it)` : ""}${recorded.length < tables.length ? ` (${tables.length - recorded.length} large table(s) have estimates only)` : ""}`;
}

/** A snapshot of the keyspaces being restored, captured into the rescue run (restorable like any run). */
async function keepRescueCopy(ctx: RestoreContext<unknown>, cluster: Cluster, first: CassandraNode, keyspaces: string[]): Promise<string | undefined> {
  const existing = await existingSchema(first, keyspaces);
  const present = keyspaces.filter((keyspace) => existing.keyspaces.has(keyspace));
  if (present.length === 0) return undefined;
  const rescue = ctx.rescue!;
  const store = await rescue.store(ctx.serviceName);
  const tag = `composure-rescue-${Date.now()}`;
  const target = { helperImage: ctx.helperImage, project: ctx.project.name, store };
  const helpers = await beginNodeHelpers(cluster.nodes, target); // they start while the snapshot is taken
  try {
    const strikeOff = await ctx.journal.note("cassandra", ctx.serviceName, { tag, nodes: cluster.nodes.map((node) => ({ id: node.container.id, key: node.key })) });
    const snapshot = await takeSnapshot(cluster, { keyspaces: present }, tag).catch(async (error: unknown) => {
      await strikeOff(); // takeSnapshot cleared what it made
      throw error;
    });
    try {
      const { artifacts } = await captureSnapshot(snapshot, target, helpers);
      for (const artifact of artifacts) rescue.add(ctx.serviceName, artifact, "cassandra");
    } finally {
      await snapshot.clear();
      await strikeOff();
    }
  } finally {
    await helpers.close();
  }
  return `kept a rescue copy of ${present.join(", ")} (all nodes) in the rescue run`;
}

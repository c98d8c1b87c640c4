// Backing up a Cassandra cluster: one snapshot tag on every node, the schema of the chosen
// keyspaces, then per node one archive of exactly its `snapshots/<tag>` directories, read from
// its volumes by a read-only helper (no copy inside the container, no downtime). Used by backups
// and by the rescue copy a restore keeps of the tables it replaces.
import { existsSync } from "node:fs";
import path from "node:path";
import { Readable } from "node:stream";
import type { ArtifactStore } from "../../store/types.ts";
import type { Artifact } from "../../catalog/manifest.ts";
import { messageOf } from "../../errors.ts";
import { formatBytes, formatSeconds, log } from "../../log.ts";
import { beginHelpers, type HelperSession } from "../../docker/helper.ts";
import { inspectContainer } from "../../docker/containers.ts";
import type { Leftover } from "../../lifecycle/journal.ts";
import { chooseKeyspaces, jsonRows, parseSnapshotDir, quoteIdentifier, tableKey, tablesInSchema } from "./cql.ts";
import { jmxClientClass, JmxSession, withJmxSessions, type TableStatistics } from "./jmx.ts";
import { cqlsh, describeNode, identityColumns, identityFromRow, onEveryNode, requireRunning, selectJson, type CassandraNode, type Cluster, type NodeIdentity } from "./nodes.ts";

/**
 * Tables below this many estimated partitions and this many live bytes (on every node) also get
 * an exact count(*), before and after the snapshot: a count reads the whole table, so a table of
 * a few wide partitions is large too. Larger tables have the estimates only.
 */
export const exactCountLimit = 100_000;
export const exactCountBytesLimit = 64 * 1024 ** 2;

export interface SnapshotRequest {
  /** Include patterns (default: every keyspace but Cassandra's own). */
  keyspaces?: string[];
  excludeKeyspaces?: string[];
}

export interface Snapshot {
  cluster: Cluster;
  /** The nodes as they ran when the snapshot was taken. */
  nodes: CassandraNode[];
  tag: string;
  keyspaces: string[];
  /**
   * `DESCRIBE KEYSPACE ... WITH INTERNALS` of each keyspace, read from the moment the nodes
   * snapshot (a cqlsh start): the nodes' captures need not wait for it.
   */
  schema: Promise<string>;
  identities: Map<string, NodeIdentity>;
  /** Per node, tableKey -> estimated partitions (the table figures, taken before the snapshot). */
  estimates: Map<string, Map<string, number>>;
  /** Exact row counts of the small tables, finished before the snapshot began (the lower bound under writes). */
  countsBefore: Record<string, number>;
  /** How long those counts took (the estimates come with the tablestats every backup runs anyway). */
  countSeconds: number;
  /** How long the slowest node took to answer with its table figures (the estimates; also the JMX check). */
  figuresSeconds: number;
  seconds: number;
  /** Clears the tag on every node and ends their JMX clients; throws naming the nodes it failed on. */
  clear(): Promise<void>;
}

/** Where a restore stages SSTables, at the root of a node's data volume (skipped by captures). */
export const stagingDirName = "composure-restore";

/**
 * Every node running, the keyspace filter resolved, then the table figures and a snapshot
 * `<tag>` of the keyspaces on all nodes at once (jmx.ts). The figures come first on every node, so
 * that a node whose JMX does not answer stops the backup before any snapshot
 * exists; a snapshot failing on one node clears the tag on every node before the error is thrown.
 * `early`: a node's JMX client begun before (while the ring was discovered); ended with the others.
 */
export async function takeSnapshot(cluster: Cluster, request: SnapshotRequest, tag: string, early?: JmxSession): Promise<Snapshot> {
  const started = performance.now();
  let nodes: CassandraNode[];
  try {
    if (cluster.nodes.length === 0) throw new Error(`cluster ${cluster.name} has no containers`);
    nodes = await onEveryNode(cluster.nodes, requireRunning);
  } catch (error) {
    await early?.close();
    throw error;
  }
  const first = nodes[0];
  if (!existsSync(jmxClientClass)) log.info(`cassandra cluster ${cluster.name}: composure's JMX client is not built (no JDK when \`make install\` ran): nodetool runs every step, about 1 s slower each`);
  // One JMX client (a JVM) per node serves every step: first the table figures, for the
  // partition estimates, which are also the check that every node answers; then the snapshot
  // (no separate flush: it flushes the tables it links); clear() at the end. The keyspaces and
  // each node's identity (host id, tokens) are read meanwhile.
  const identities = new Map<string, NodeIdentity>();
  const sessions = new Map<string, JmxSession>();
  const endSessions = async () => void (await Promise.all([...sessions.values()].map((session) => session.close())));
  if (early) sessions.set(early.node.key, early);
  let figuresSeconds = 0;
  const statistics = async (node: CassandraNode) => {
    const session = sessions.get(node.key) ?? (await JmxSession.open(node));
    sessions.set(node.key, session);
    const asked = performance.now();
    const figures = await session.tableStatistics([]);
    figuresSeconds = Math.max(figuresSeconds, (performance.now() - asked) / 1000);
    return figures;
  };
  try {
    // What discovery read of a node (its keyspaces, its identity) is not asked again.
    const seen = nodes.some((node) => node.key === cluster.seen?.key) ? cluster.seen : undefined;
    const [listed, estimated, identified] = await Promise.allSettled([
      seen ? seen.keyspaces : selectJson(first, "SELECT JSON keyspace_name FROM system_schema.keyspaces").then((rows) => rows.map((row) => String(row.keyspace_name))),
      onEveryNode(nodes, statistics),
      onEveryNode(nodes, async (node) => identities.set(node.key, node.key === seen?.key ? seen.identity : await identityOf(node))),
    ]);
    if (estimated.status === "rejected") throw estimated.reason;
    if (listed.status === "rejected") throw listed.reason;
    if (identified.status === "rejected") throw identified.reason;
    const choice = chooseKeyspaces(listed.value, request.keyspaces, request.excludeKeyspaces);
    if (choice.problems.length) throw new KeyspaceFilterError(choice.problems.join("; "));
    const estimates = new Map(nodes.map((node, index) => [node.key, estimated.value[index].partitions]));
    const countStarted = performance.now();
    const countsBefore = await countSmallTables(cluster.name, first, smallTables(estimated.value, choice.keyspaces));
    const countSeconds = (performance.now() - countStarted) / 1000;
    const clearOn = async (targets: CassandraNode[]) => {
      const results = await Promise.allSettled(targets.map((node) => sessions.get(node.key)!.clearSnapshot(tag)));
      const failed = results.flatMap((result, index) => (result.status === "rejected" ? [`${messageOf(result.reason)} (clear it by hand: docker exec ${targets[index].container.name} nodetool clearsnapshot -t ${tag})`] : []));
      if (failed.length) throw new Error(`snapshot ${tag} could not be cleared: ${failed.join("; ")}`);
    };
    const snapshotOn = (node: CassandraNode) => sessions.get(node.key)!.snapshot(tag, choice.keyspaces);
    // The schema is read while the nodes snapshot (cqlsh beside the JMX clients), not after them.
    const describing = describeKeyspaces(first, choice.keyspaces);
    describing.catch(() => undefined); // awaited by the capture
    try {
      // A tag kept from run to run (an incremental store) may be left by a killed run: clear it and take it again.
      await onEveryNode(nodes, (node) =>
        snapshotOn(node).catch(async (error: unknown) => {
          if (!/already exists/i.test(messageOf(error))) throw error;
          await sessions.get(node.key)!.clearSnapshot(tag);
          await snapshotOn(node);
        }),
      );
      const seconds = (performance.now() - started) / 1000;
      log.info(`cassandra cluster ${cluster.name}: snapshot ${tag} of ${choice.keyspaces.join(", ")} on ${nodes.length} node(s) in ${formatSeconds(seconds)}`);
      const clear = () => clearOn(nodes).finally(endSessions);
      return { cluster, nodes, tag, keyspaces: choice.keyspaces, schema: describing, identities, estimates, countsBefore, countSeconds, figuresSeconds, seconds, clear };
    } catch (error) {
      // Some nodes may have the tag: clear it everywhere (nodes that failed too: it is idempotent).
      await clearOn(nodes).catch((clearError: unknown) => log.error(messageOf(clearError)));
      throw error;
    }
  } catch (error) {
    await endSessions();
    throw error;
  }
}

export class KeyspaceFilterError extends Error {
  name = "KeyspaceFilterError";
}

async function identityOf(node: CassandraNode): Promise<NodeIdentity> {
  const [row] = await selectJson(node, `SELECT JSON ${identityColumns} FROM system.local`);
  if (!row) throw new Error(`${describeNode(node)}: system.local is empty`);
  return identityFromRow(row);
}

/** Keyspace DDL (replication included) and every table, type, index and view, with dropped columns. */
async function describeKeyspaces(node: CassandraNode, keyspaces: string[]): Promise<string> {
  const statements = keyspaces.map((keyspace) => `DESCRIBE KEYSPACE ${quoteIdentifier(keyspace)} WITH INTERNALS;`).join("\n");
  const result = await cqlsh(node, `${statements}\n`, { strict: true });
  if (!/CREATE KEYSPACE/i.test(result.stdout)) throw new Error(`DESCRIBE KEYSPACE on ${describeNode(node)} returned no keyspace DDL`);
  return `${result.stdout.trim()}\n`;
}

// ---------------------------------------------------------------------------------------------
// Capture

export interface TableOnNode {
  /** Snapshot directories of the table on this node, as paths in the container. */
  dirs: string[];
  files: number;
  bytes: number;
  estimatedPartitions?: number;
}

export interface NodeFacts {
  kind: "node";
  engine: "cassandra";
  node: string;
  service: string;
  containerNumber: number;
  container: string;
  tag: string;
  identity: NodeIdentity;
  /** Data directories (in the container) the snapshot was found in. */
  dataDirs: string[];
  /** tableKey -> what the archive holds of it. */
  tables: Record<string, TableOnNode>;
  /** Bytes of the snapshot files (before compression). */
  rawBytes: number;
  selectors: string[];
}

/** Runs `sh -c script` in the helper; a non-zero exit is an error. */
async function helperScript(helper: { run(argv: string[]): Promise<{ exitCode: number; stdout: string; stderr: string }> }, script: string, args: string[] = []): Promise<string> {
  const result = await helper.run(["sh", "-c", script, "sh", ...args]);
  if (result.exitCode !== 0) throw new Error(`${result.stderr.trim() || `exit code ${result.exitCode}`}`);
  return result.stdout;
}

export interface CaptureTarget {
  helperImage: string;
  project: string;
  /** Where the artifacts go. */
  store: ArtifactStore;
}

/** The node's volumes and bind mounts: where its data directories can be read from a helper. */
const dataMounts = (node: CassandraNode) => node.container.mounts.filter((mount) => mount.type === "volume" || mount.type === "bind");

/** The node's volumes, read-only under /n: what its capture helper mounts. */
export function nodeBinds(node: CassandraNode): string[] {
  const mounts = dataMounts(node);
  if (mounts.length === 0) throw new Error(`${describeNode(node)} has no volume: its data directory is inside the container, where a helper cannot read it (put /var/lib/cassandra on a volume)`);
  return mounts.map((mount) => `${mount.source}:/n${mount.destination}:ro`);
}

/** Capture helpers of nodes by node key, begun at once; close() removes them all. */
export interface NodeHelpers {
  sessions: Map<string, HelperSession>;
  close(): Promise<void>;
}

/** Begins every node's capture helper (nodeBinds), so that they start while the snapshot is taken. */
export async function beginNodeHelpers(nodes: CassandraNode[], target: Pick<CaptureTarget, "helperImage" | "project">): Promise<NodeHelpers> {
  const binds = nodes.map(nodeBinds); // a node without a volume fails here, before anything starts
  const sessions = await beginHelpers(target.helperImage, target.project, binds);
  return { sessions: new Map(nodes.map((node, index) => [node.key, sessions[index]])), close: async () => void (await Promise.all(sessions.map((session) => session.close()))) };
}

/**
 * Archives the node's `snapshots/<tag>` directories from its volumes into `<node>.tar.zst`, read
 * in `session`, a helper with nodeBinds(node) (begun while the snapshot was taken). Paths in the
 * archive are the container's own (var/lib/cassandra/data/<ks>/<table>-<id>/snapshots/<tag>/...),
 * so the archive says where each file came from even with several data directories.
 */
export async function captureNode(snapshot: Snapshot, node: CassandraNode, target: CaptureTarget, session: HelperSession): Promise<{ artifact: Artifact }> {
  const { helper, pipe } = session;
  // One walk of the node's volumes: every directory of our snapshot (`D|<dir>`; the walk does not
  // enter snapshot directories, nor the staging directories of a restore, which hold copies of
  // them), each followed by its files' sizes (`<bytes>|<file>`), before compression, for the facts.
  const walk = 'find /n -type d \\( -name "$1" -o -path "*/snapshots/*" \\) -prune -path "*/snapshots/$2" -print | while IFS= read -r d; do echo "D|$d"; find "$d" -type f -exec stat -c "%s|%n" {} +; done';
  const listing = (await helperScript(helper, walk, [stagingDirName, snapshot.tag])).split("\n").filter(Boolean);
  const tables: Record<string, TableOnNode> = {};
  const dataDirs = new Set<string>();
  let table: TableOnNode | undefined;
  let rawBytes = 0;
  for (const line of listing) {
    const bar = line.indexOf("|");
    const [kind, where] = [line.slice(0, bar), line.slice(bar + 1).slice("/n".length)];
    if (kind !== "D") {
      if (!table) continue;
      table.files += 1;
      table.bytes += Number(kind);
      rawBytes += Number(kind);
      continue;
    }
    const parsed = parseSnapshotDir(where, snapshot.tag);
    table = parsed && snapshot.keyspaces.includes(parsed.keyspace) ? (tables[tableKey(parsed.keyspace, parsed.table)] ??= { dirs: [], files: 0, bytes: 0 }) : undefined;
    if (!parsed || !table) continue;
    dataDirs.add(parsed.dataDir);
    table.dirs.push(where);
  }
  const dirs = Object.values(tables).flatMap((entry) => entry.dirs);
  if (dirs.length === 0) {
    const where = dataMounts(node).map((mount) => mount.destination).join(", ");
    throw new Error(`${describeNode(node)}: no snapshot ${snapshot.tag} in its volumes (${where}): is the data directory (data_file_directories) on a volume?`);
  }
  const started = performance.now();
  const stored = await target.store.putTree(node.key, { helper, pipe, dir: "/n", entries: dirs.map((dir) => dir.slice(1)), relinked: true }, `${node.key}: snapshot ${snapshot.tag}`);
  const seconds = (performance.now() - started) / 1000;
  log.info(`${node.key}: ${Object.keys(tables).length} tables, ${formatBytes(rawBytes)} of SSTables -> ${formatBytes(stored.bytes)} in ${formatSeconds(seconds)} (${formatBytes(rawBytes / Math.max(seconds, 0.001))}/s)`);
  const facts: NodeFacts = {
    kind: "node",
    engine: "cassandra",
    node: node.key,
    service: node.service,
    containerNumber: node.number,
    container: node.container.name,
    tag: snapshot.tag,
    identity: snapshot.identities.get(node.key)!,
    dataDirs: [...dataDirs].sort(),
    tables,
    rawBytes,
    selectors: selectorsOf(Object.keys(tables)),
  };
  return { artifact: { ...stored, facts: facts as unknown as Record<string, unknown> } };
}

/** Names VOLUME= may use to pick an artifact: each keyspace and each keyspace.table. */
export function selectorsOf(tables: string[]): string[] {
  const keyspaces = tables.map((key) => key.slice(0, key.indexOf(".")));
  return [...new Set([...keyspaces, ...tables])].sort();
}

/**
 * Exact row counts (`SELECT count(*)`) of the given tables, in one cqlsh session per attempt, at
 * the consistency level of each attempt in turn: tables whose count fails (a timeout on a big or
 * busy table) are tried again at the next one, then left out and reported.
 */
export async function countRows(node: CassandraNode, tables: string[], consistencies: string[]): Promise<{ counts: Record<string, number>; failed: string[] }> {
  const counts: Record<string, number> = {};
  let pending = tables;
  for (const consistency of consistencies) {
    if (pending.length === 0) break;
    const statements = pending.map((key, index) => `SELECT JSON count(*) AS c${index} FROM ${qualifiedName(key)};`);
    const result = await cqlsh(node, `CONSISTENCY ${consistency};\n${statements.join("\n")}\n`, { timeoutSeconds: 600 });
    for (const row of jsonRows(result.stdout)) {
      for (const [alias, value] of Object.entries(row)) {
        const key = alias.startsWith("c") ? pending[Number(alias.slice(1))] : undefined;
        if (key !== undefined) counts[key] = Number(value);
      }
    }
    pending = pending.filter((key) => counts[key] === undefined);
  }
  return { counts, failed: pending };
}

/** keyspace.table as a CQL name, both parts quoted. */
export function qualifiedName(key: string): string {
  const dot = key.indexOf(".");
  return `${quoteIdentifier(key.slice(0, dot))}.${quoteIdentifier(key.slice(dot + 1))}`;
}

export interface ClusterFacts {
  kind: "schema";
  engine: "cassandra";
  cluster: string;
  services: string[];
  nodes: string[];
  tag: string;
  releaseVersion: string;
  keyspaces: string[];
  tableNames: string[];
  views: string[];
  /** TableFacts shape (see postgres/in-container.ts): number of tables, exact counts of the small ones. */
  tables: number;
  counts: Record<string, number>;
  /** Tables written to while the snapshot was taken: [count before it, count after it]; the snapshot holds between. */
  bounds?: Record<string, [number, number]>;
  rows: number;
  complete: boolean;
  /** tableKey -> the largest estimate of partitions on any node (the table figures). */
  estimatedPartitions: Record<string, number>;
  selectors: string[];
}

/** Every node's capture, one after the other (zstd and restic use every core), in its helper. */
async function captureNodes(snapshot: Snapshot, target: CaptureTarget, helpers: NodeHelpers): Promise<{ artifact: Artifact }[]> {
  const results: { artifact: Artifact }[] = [];
  for (const node of snapshot.nodes) {
    const session = helpers.sessions.get(node.key);
    if (!session) throw new Error(`${describeNode(node)}: no capture helper was begun for it`);
    results.push(await captureNode(snapshot, node, target, session));
  }
  return results;
}

/**
 * Captures a snapshot: every node's archive (captureNodes) in the helpers begun for the nodes
 * (the caller closes them), from before the schema is read to its end, and `schema.cql` beside
 * them. Row facts are gathered meanwhile: partition estimates of every node, and exact
 * counts of the tables that are small on every node (counted before the snapshot and again
 * after it: a table written to meanwhile is recorded with both counts as bounds).
 */
export async function captureSnapshot(snapshot: Snapshot, target: CaptureTarget, helpers: NodeHelpers): Promise<{ artifacts: Artifact[]; rawBytes: number }> {
  // The nodes' captures begin while the schema is still read.
  const capturing = captureNodes(snapshot, target, helpers);
  capturing.catch(() => undefined); // awaited below
  let schema: string;
  let tableNames: string[];
  let views: string[];
  try {
    schema = await snapshot.schema;
    const inSchema = tablesInSchema(schema);
    tableNames = inSchema.tables.filter((key) => snapshot.keyspaces.includes(key.slice(0, key.indexOf("."))));
    views = inSchema.views.filter((key) => snapshot.keyspaces.includes(key.slice(0, key.indexOf("."))));
    if (tableNames.length === 0) throw new Error(`keyspace${snapshot.keyspaces.length > 1 ? "s" : ""} ${snapshot.keyspaces.join(", ")} of cassandra cluster ${snapshot.cluster.name} ha${snapshot.keyspaces.length > 1 ? "ve" : "s"} no tables: nothing to back up`);
  } catch (error) {
    await capturing.then((results) => Promise.all(results.map((result) => target.store.discard(result.artifact))), () => undefined).catch(() => undefined);
    throw error;
  }
  const factsStarted = performance.now();
  let factsEnded = factsStarted;
  const factsSeconds = () => (factsEnded - factsStarted) / 1000;
  const factsWork = gatherRowFacts(snapshot, tableNames).finally(() => (factsEnded = performance.now())).catch((error: unknown) => {
    log.warn(`cassandra cluster ${snapshot.cluster.name}: row facts incomplete: ${messageOf(error)}`);
    return { counts: {} as Record<string, number>, bounds: {} as Record<string, [number, number]> };
  });
  // schema.cql is stored beside the nodes' captures; when a node's capture fails, it is dropped again.
  const storingSchema = target.store.putStream("schema.cql", Readable.from([Buffer.from(schema)]));
  storingSchema.catch(() => undefined); // awaited below
  let nodeResults: { artifact: Artifact }[];
  try {
    nodeResults = await capturing;
  } catch (error) {
    await storingSchema.then((stored) => target.store.discard(stored)).catch(() => undefined);
    throw error;
  }
  const { counts, bounds } = await factsWork;
  const counted = Object.keys(snapshot.countsBefore).length;
  log.info(`cassandra cluster ${snapshot.cluster.name}: row facts: partition estimates of ${tableNames.length} table(s) from the table figures in ${formatSeconds(snapshot.figuresSeconds)}, exact counts of ${counted} small table(s) in ${formatSeconds(snapshot.countSeconds)} before the snapshot and ${formatSeconds(factsSeconds())} after it (beside the capture)`);
  for (const result of nodeResults) {
    const facts = result.artifact.facts as unknown as NodeFacts;
    const estimates = snapshot.estimates.get(facts.node);
    for (const [key, table] of Object.entries(facts.tables)) {
      const estimate = estimates?.get(key);
      if (estimate !== undefined) table.estimatedPartitions = estimate;
    }
  }
  const estimatedPartitions: Record<string, number> = {};
  for (const estimates of snapshot.estimates.values()) {
    for (const [key, value] of estimates) if (tableNames.includes(key)) estimatedPartitions[key] = Math.max(estimatedPartitions[key] ?? 0, value);
  }
  const stored = await storingSchema;
  const facts: ClusterFacts = {
    kind: "schema",
    engine: "cassandra",
    cluster: snapshot.cluster.name,
    services: snapshot.cluster.services,
    nodes: snapshot.nodes.map((node) => node.key),
    tag: snapshot.tag,
    releaseVersion: [...snapshot.identities.values()][0]?.releaseVersion ?? "",
    keyspaces: snapshot.keyspaces,
    tableNames,
    views,
    tables: tableNames.length,
    counts,
    ...(Object.keys(bounds).length ? { bounds } : {}),
    rows: Object.values(counts).reduce((sum, count) => sum + count, 0),
    complete: tableNames.every((key) => counts[key] !== undefined || bounds[key] !== undefined),
    estimatedPartitions,
    selectors: selectorsOf(tableNames),
  };
  const schemaArtifact: Artifact = { ...stored, facts: facts as unknown as Record<string, unknown> };
  const rawBytes = nodeResults.reduce((sum, result) => sum + Number((result.artifact.facts as unknown as NodeFacts).rawBytes), 0);
  return { artifacts: [schemaArtifact, ...nodeResults.map((result) => result.artifact)], rawBytes };
}

/**
 * Tables of `keyspaces` below both exact-count limits on every node (a table a node does not
 * report is empty there). Without statistics no table is known to be small: none is counted.
 */
export function smallTables(perNode: TableStatistics[], keyspaces: string[]): string[] {
  if (perNode.some((node) => node.partitions.size === 0)) return [];
  const tables = [...new Set(perNode.flatMap((node) => [...node.partitions.keys()]))].filter((key) => keyspaces.includes(key.slice(0, key.indexOf("."))));
  const small = (node: TableStatistics, key: string) => (node.partitions.get(key) ?? 0) < exactCountLimit && (node.liveBytes.get(key) ?? 0) < exactCountBytesLimit;
  return tables.filter((key) => perNode.every((node) => small(node, key))).sort();
}

/** Exact counts at consistency ONE (quick, as one replica sees the table; restores check at ALL). */
async function countSmallTables(cluster: string, node: CassandraNode, tables: string[]): Promise<Record<string, number>> {
  const { counts, failed } = await countRows(node, tables, ["ONE", "ONE"]);
  if (failed.length) log.warn(`cassandra cluster ${cluster}: no exact row count for ${failed.join(", ")} (count(*) failed; estimates recorded)`);
  return counts;
}

/**
 * The small tables counted again after the snapshot. Counted before and after, a table written
 * to meanwhile holds between the two counts in the snapshot (for inserts and updates, the usual
 * writes): its facts are those bounds, and a drill checks the restored count lies within them.
 */
async function gatherRowFacts(snapshot: Snapshot, tableNames: string[]): Promise<{ counts: Record<string, number>; bounds: Record<string, [number, number]> }> {
  const small = tableNames.filter((key) => snapshot.countsBefore[key] !== undefined);
  const after = await countSmallTables(snapshot.cluster.name, snapshot.nodes[0], small);
  const counts: Record<string, number> = {};
  const bounds: Record<string, [number, number]> = {};
  for (const key of small) {
    const before = snapshot.countsBefore[key];
    if (after[key] === undefined || after[key] === before) counts[key] = before;
    else bounds[key] = [Math.min(before, after[key]), Math.max(before, after[key])];
  }
  return { counts, bounds };
}

/**
 * Clears the snapshot tag a killed run left on its nodes (its journal entry). A node that is
 * gone took its snapshot with it; one that is stopped keeps the entry until it runs again.
 */
export async function clearLeftoverTag(leftover: Leftover): Promise<void> {
  const { tag, nodes } = leftover.data as { tag: string; nodes: { id: string; key: string }[] };
  const waiting: string[] = [];
  for (const { id, key } of nodes) {
    const container = await inspectContainer(id).catch(() => undefined);
    if (!container) continue;
    if (!container.running) waiting.push(key);
    else await withJmxSessions([{ key, service: leftover.service, number: 0, container }], ([session]) => session.clearSnapshot(tag));
  }
  if (waiting.length) throw new Error(`the Cassandra snapshot ${tag} an interrupted run left stays on ${waiting.join(", ")} until it runs again`);
  log.info(`${leftover.service}: cleared the Cassandra snapshot ${tag} an interrupted run left on ${nodes.length} node(s)`);
}

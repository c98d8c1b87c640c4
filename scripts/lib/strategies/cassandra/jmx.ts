// What a backup asks of every Cassandra node over JMX: table figures, a snapshot, clearing it.
// composure's own client (jmx/ComposureJmx.java, compiled into dist/ by `make install` when a
// JDK is at hand) does each in about 0.25 s inside the node's container; nodetool, which loads
// Cassandra's whole classpath, takes about 1.4 s of CPU per call and stays the fallback: for a
// checkout built without javac, and for a node the client cannot serve (its JMX elsewhere than
// 127.0.0.1:7199, a shell-less image, an operation its Cassandra lacks).
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { repoRoot } from "../../checkout.ts";
import { messageOf } from "../../errors.ts";
import { log } from "../../log.ts";
import { runTool, ToolMissingError } from "../shared/in-container.ts";
import { tableKey } from "./cql.ts";
import { describeNode, nodetool, type CassandraNode } from "./nodes.ts";

/** The compiled client; absent when the checkout was built without javac. */
export const jmxClientClass = path.join(repoRoot, "dist", "cassandra-jmx", "ComposureJmx.class");
/** nodetool's default port, which the client uses too. */
const jmxPort = "7199";

/**
 * Copies the class into the container once (a folder named by its hash, so a newer build never
 * meets an older copy; stdin is drained when it is there already), then runs it with the node's
 * own JVM, as nodetool would find it.
 */
const launcher = [
  'd="/tmp/composure-jmx-$1"; shift',
  'if [ -f "$d/ComposureJmx.class" ]; then cat >/dev/null; else mkdir -p "$d" && cat >"$d/.$$" && mv "$d/.$$" "$d/ComposureJmx.class" || exit 5; fi',
  'j=java; if [ -x "$JAVA_HOME/bin/java" ]; then j="$JAVA_HOME/bin/java"; fi',
  'exec "$j" -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Xss512k -cp "$d" ComposureJmx "$@"',
].join("\n");

/**
 * The client's output for `command` on the node, or undefined when the client cannot serve it
 * (the caller runs nodetool instead; why is logged). The node refusing the operation (a snapshot
 * tag that exists, a keyspace that does not) throws, as nodetool's failure would.
 */
async function viaClient(node: CassandraNode, command: string[], timeoutMs: number): Promise<string | undefined> {
  if (!existsSync(jmxClientClass)) return undefined;
  const bytes = readFileSync(jmxClientClass);
  const version = createHash("sha256").update(bytes).digest("hex").slice(0, 12);
  const fallBack = (why: string) => {
    log.info(`${describeNode(node)}: nodetool ${command[0]} instead of composure's JMX client (${why})`);
    return undefined;
  };
  let result;
  try {
    result = await runTool(node.container, ["sh", "-c", launcher, "sh", version, jmxPort, ...command], { timeoutMs, stdin: bytes });
  } catch (error) {
    return fallBack(error instanceof ToolMissingError ? "the image has no sh, or no java on its PATH" : messageOf(error));
  }
  if (result.exitCode === 0) return result.stdout;
  // Found among the lines, not first: the JVM may print "Picked up JAVA_TOOL_OPTIONS" before it.
  const lines = result.stderr.trim().split("\n");
  const refusal = lines.find((line) => line.startsWith("refused: "));
  if (result.exitCode === 1 && refusal) throw new Error(`${command[0]} on ${describeNode(node)} failed: ${refusal.slice("refused: ".length)}`);
  const message = lines.filter((line) => line && !line.startsWith("Picked up ")).join(" ").slice(0, 300);
  return fallBack(`exit code ${result.exitCode}: ${message || "no message"}`);
}

/** A node's figures per tableKey: estimated partitions and live bytes on disk. */
export interface TableStatistics {
  partitions: Map<string, number>;
  liveBytes: Map<string, number>;
}

/**
 * The table figures of the keyspaces (all when none is named) on one node. A node that does not
 * answer throws; figures it printed in a form that cannot be read only cost the estimates (a warning).
 */
export async function tableStatistics(node: CassandraNode, keyspaces: string[]): Promise<TableStatistics> {
  const lines = await viaClient(node, ["tablestats", ...keyspaces], 600_000);
  if (lines !== undefined) return clientStatistics(lines);
  return nodetoolStatistics(node, await nodetool(node, ["tablestats", "-F", "json", ...keyspaces]));
}

/** `<keyspace>\t<table>\t<partitions>\t<live bytes>` lines. */
export function clientStatistics(lines: string): TableStatistics {
  const statistics: TableStatistics = { partitions: new Map(), liveBytes: new Map() };
  for (const line of lines.split("\n")) {
    const [keyspace, table, partitions, liveBytes] = line.split("\t");
    if (!table) continue;
    if (Number.isFinite(Number(partitions)) && partitions !== "") statistics.partitions.set(tableKey(keyspace, table), Number(partitions));
    if (Number.isFinite(Number(liveBytes)) && liveBytes !== "") statistics.liveBytes.set(tableKey(keyspace, table), Number(liveBytes));
  }
  return statistics;
}

/** `nodetool tablestats -F json` output. */
function nodetoolStatistics(node: CassandraNode, output: string): TableStatistics {
  const statistics: TableStatistics = { partitions: new Map(), liveBytes: new Map() };
  let document: Record<string, { tables?: Record<string, { number_of_partitions_estimate?: number; space_used_live?: string | number }> }>;
  try {
    document = JSON.parse(output.slice(output.indexOf("{")));
  } catch (error) {
    log.warn(`${describeNode(node)}: no partition estimates (nodetool tablestats printed no JSON: ${messageOf(error)})`);
    return statistics;
  }
  for (const [keyspace, stats] of Object.entries(document)) {
    if (!stats || typeof stats !== "object" || !stats.tables) continue;
    for (const [table, tableStats] of Object.entries(stats.tables)) {
      const [estimate, liveBytes] = [Number(tableStats.number_of_partitions_estimate), Number(tableStats.space_used_live)];
      if (Number.isFinite(estimate)) statistics.partitions.set(tableKey(keyspace, table), estimate);
      if (Number.isFinite(liveBytes)) statistics.liveBytes.set(tableKey(keyspace, table), liveBytes);
    }
  }
  return statistics;
}

/** Snapshot `tag` of the keyspaces on the node (it flushes the tables first). */
export async function snapshotNode(node: CassandraNode, tag: string, keyspaces: string[]): Promise<void> {
  if ((await viaClient(node, ["snapshot", tag, ...keyspaces], 600_000)) === undefined) await nodetool(node, ["snapshot", "-t", tag, ...keyspaces]);
}

/** Removes snapshot `tag` from every keyspace of the node (nothing to remove is no error). */
export async function clearSnapshotOn(node: CassandraNode, tag: string): Promise<void> {
  if ((await viaClient(node, ["clearsnapshot", tag], 300_000)) === undefined) await nodetool(node, ["clearsnapshot", "-t", tag], 300_000);
}

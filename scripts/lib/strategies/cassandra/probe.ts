// "Does the cluster answer, with the data?": every node answers CQL and sees every other node up
// (readiness, also of restore drills); with a run's artifacts, the exact row counts recorded at
// backup time (or the bounds of a table written to during the snapshot) are compared with counts
// read now at consistency ALL.
import type { Artifact } from "../../catalog/manifest.ts";
import type { ProbeContext, ProbeResult } from "../types.ts";
import { discoverCluster, nodetool, onEveryNode, requireRunning, type CassandraNode } from "./nodes.ts";
import { countDifferences, countedTables, schemaFactsOf } from "./restore.ts";
import { countRows } from "./snapshot.ts";

/** Lines of `nodetool status` for nodes that are not Up/Normal: a node still joining, or down. */
async function nodesNotUp(node: CassandraNode): Promise<string[]> {
  const output = await nodetool(node, ["status"], 60_000);
  return output.split("\n").filter((line) => /^[UD][NLJM]\s/.test(line) && !line.startsWith("UN")).map((line) => line.trim());
}

export async function probeCassandra(ctx: ProbeContext<unknown>, recorded?: Artifact[]): Promise<ProbeResult> {
  const cluster = await discoverCluster(ctx.config, ctx.project, ctx.service);
  const nodes = await onEveryNode(cluster.nodes, requireRunning);
  const notUp = (await onEveryNode(nodes, nodesNotUp)).flat();
  const facts: Record<string, unknown> = { cluster: cluster.name, nodes: nodes.map((node) => node.key) };
  if (notUp.length) {
    const error = `nodes not up and normal yet: ${[...new Set(notUp)].join("; ")}`;
    return { ok: false, differences: [error], facts: { ...facts, error } };
  }
  const schema = recorded && schemaFactsOf(recorded);
  if (!schema) return { ok: true, differences: [], facts };
  const tables = countedTables(schema, schema.tableNames);
  const { counts, failed } = await countRows(nodes[0], tables, ["ALL", "ALL"]);
  const differences = countDifferences(schema, counts, tables);
  return { ok: differences.length === 0, differences, facts: { ...facts, counts, failed, differences } };
}

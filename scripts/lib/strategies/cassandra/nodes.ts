// The nodes of a Cassandra cluster in a Compose project, and running nodetool and cqlsh on them.
//
// A cluster is found, not configured: the services whose containers are in one ring (the
// addresses a node lists in system.local and system.peers) form one cluster, so two services
// `cassandra-node1` and `cassandra-node2` seeding each other are snapshotted, captured and
// restored together without any label. The `composure.cassandra.cluster=<name>` label (or
// option) overrides the discovery and joins clusters that span projects. Nodes are ordered by
// service name, then container number, and are named `<service>-<number>`: the same name on
// Compose v1 and v2 (container names differ), so a restore finds the node that owned the files.
import { createHash } from "node:crypto";
import type { ProjectInfo, ServiceInfo } from "../../compose/discover.ts";
import type { Config } from "../../config/schema.ts";
import { inspectContainer, type ContainerInfo } from "../../docker/containers.ts";
import { messageOf } from "../../errors.ts";
import { runTool, ToolMissingError, type ToolResult } from "../shared/in-container.ts";
import { jsonRows } from "./cql.ts";

const clusterLabel = "composure.cassandra.cluster";
const numberLabel = "com.docker.compose.container-number";
const oneoffLabel = "com.docker.compose.oneoff";

export interface CassandraNode {
  /** `<service>-<container number>`, e.g. cassandra1-1. */
  key: string;
  service: string;
  number: number;
  container: ContainerInfo;
}

export interface Cluster {
  /** The cluster option; else the member services joined by '+' (one service: its name). */
  name: string;
  /** Member services, by name. */
  services: string[];
  nodes: CassandraNode[];
  /** How the members were found: the option/label, or the ring the service's nodes are in. */
  foundBy: "label" | "ring";
  /** The addresses the ring knows its nodes by (empty when no node of the service runs). */
  ringAddresses: string[];
  /** What the service's running node said in the same cqlsh session: a snapshot need not ask it again. */
  seen?: NodeView;
}

/** A node's keyspaces and identity, read while its ring was discovered. */
export interface NodeView {
  key: string;
  keyspaces: string[];
  identity: NodeIdentity;
}

/** The cluster option of a service: composure.yml wins over the label, as for every option. */
function clusterOption(config: Config, service: ServiceInfo): string | undefined {
  const fromFile = config.services[service.name]?.options?.cluster;
  if (typeof fromFile === "string" && fromFile.trim()) return fromFile.trim();
  return service.labels[clusterLabel]?.trim() || undefined;
}

function nodesOf(members: ServiceInfo[]): CassandraNode[] {
  return [...members]
    .sort((a, b) => a.name.localeCompare(b.name))
    .flatMap((member) =>
      member.containers
        .filter((container) => container.labels[oneoffLabel] !== "True")
        .map((container) => {
          const number = Number(container.labels[numberLabel] ?? 1);
          return { key: `${member.name}-${number}`, service: member.name, number, container };
        }),
    );
}

function clusterOfMembers(name: string | undefined, members: ServiceInfo[], foundBy: Cluster["foundBy"], ring: Ring): Cluster {
  const services = members.map((member) => member.name).sort((a, b) => a.localeCompare(b));
  return { name: name ?? services.join("+"), services, nodes: nodesOf(members), foundBy, ringAddresses: [...ring.addresses].sort(), ...(ring.seen ? { seen: ring.seen } : {}) };
}

/**
 * The cluster of a service: every service with the same cluster option; without one, every
 * service of the project with a container in the ring of the service's running node (a service
 * with no running node is a cluster of its own: the backup then names the node that is down).
 */
export async function discoverCluster(config: Config, project: ProjectInfo, service: ServiceInfo): Promise<Cluster> {
  const running = runningNodeOf(service);
  const ring = running ? await ringOrNone(running) : { addresses: new Set<string>() };
  const name = clusterOption(config, service);
  if (name) {
    const members = project.services.filter((candidate) => candidate.name === service.name || clusterOption(config, candidate) === name);
    return clusterOfMembers(name, members, "label", ring);
  }
  const inRing = (candidate: ServiceInfo) => !clusterOption(config, candidate) && candidate.containers.some((container) => container.addresses.some((address) => ring.addresses.has(address)));
  const members = project.services.filter((candidate) => candidate.name === service.name || inRing(candidate));
  return clusterOfMembers(undefined, members, "ring", ring);
}

/** The service's first running node, the one its ring is discovered through. */
export const runningNodeOf = (service: ServiceInfo): CassandraNode | undefined => nodesOf([service]).find((node) => node.container.running);

/** The addresses the ring knows the node by (the bulk loader must reach it there, not on 127.0.0.1). */
export function ringAddressesOf(cluster: Cluster, node: CassandraNode): string[] {
  const known = node.container.addresses.filter((address) => cluster.ringAddresses.includes(address));
  return known.length ? known : node.container.addresses;
}

interface Ring {
  addresses: Set<string>;
  seen?: NodeView;
}

/**
 * The node's ring, or none when the node has no cqlsh: the service is then a cluster of its
 * own, and the snapshot's first step (nodetool on every node) names what the image lacks.
 */
async function ringOrNone(node: CassandraNode): Promise<Ring> {
  try {
    return await ringOf(node);
  } catch (error) {
    if (error instanceof ToolMissingError) return { addresses: new Set() };
    throw error;
  }
}

/**
 * Every address of the node's ring (its own, broadcast and listen, and its peers', up or down),
 * and in the same cqlsh session (a Python start each) its keyspaces and identity.
 */
async function ringOf(node: CassandraNode): Promise<Ring> {
  const statements = [
    `SELECT JSON broadcast_address, listen_address, ${identityColumns} FROM system.local;`,
    "SELECT JSON peer FROM system.peers;",
    "SELECT JSON keyspace_name FROM system_schema.keyspaces;",
  ];
  const rows = jsonRows((await cqlsh(node, `${statements.join("\n")}\n`, { strict: true })).stdout);
  const addresses = rows.flatMap((row) => [row.broadcast_address, row.listen_address, row.peer]);
  const local = rows.find((row) => row.host_id !== undefined);
  const keyspaces = rows.flatMap((row) => (row.keyspace_name === undefined ? [] : [String(row.keyspace_name)]));
  return {
    addresses: new Set(addresses.filter((address): address is string => typeof address === "string" && address !== "")),
    ...(local && keyspaces.length ? { seen: { key: node.key, keyspaces, identity: identityFromRow(local) } } : {}),
  };
}

/** The system.local columns a node's identity is made of (identityFromRow). */
export const identityColumns = "host_id, tokens, release_version, data_center, rack, cluster_name";

/** A node's identity from its system.local row. */
export function identityFromRow(row: Record<string, unknown>): NodeIdentity {
  const tokens = (Array.isArray(row.tokens) ? (row.tokens as string[]) : []).map(String).sort();
  return {
    hostId: String(row.host_id),
    tokenCount: tokens.length,
    tokensSha256: createHash("sha256").update(tokens.join(",")).digest("hex"),
    dataCenter: String(row.data_center ?? ""),
    rack: String(row.rack ?? ""),
    releaseVersion: String(row.release_version ?? ""),
    clusterName: String(row.cluster_name ?? ""),
  };
}

export const describeNode = (node: CassandraNode) => `node ${node.key} (container ${node.container.name})`;

/** The node with a fresh state; a stopped container is an error that names the node. */
export async function requireRunning(node: CassandraNode): Promise<CassandraNode> {
  let container: ContainerInfo;
  try {
    container = await inspectContainer(node.container.id);
  } catch (error) {
    throw new Error(`${describeNode(node)} is gone: ${messageOf(error)}`);
  }
  if (!container.running) throw new Error(`${describeNode(node)} is down: its container is not running (start it: docker compose up -d ${node.service})`);
  return { ...node, container };
}

/** Failures on some nodes of a cluster, each line naming its node. */
export class NodesError extends Error {
  name = "NodesError";
  constructor(
    readonly failures: { node: CassandraNode; error: unknown }[],
  ) {
    super(failures.map((failure) => messageOf(failure.error)).join("; "));
  }

  /** True when a node lacks nodetool or cqlsh (a different hint applies). */
  get toolMissing(): boolean {
    return this.failures.some((failure) => failure.error instanceof ToolMissingError);
  }
}

/** Runs `work` on every node at once; when any fails, throws one NodesError naming each failed node. */
export async function onEveryNode<T>(nodes: CassandraNode[], work: (node: CassandraNode) => Promise<T>): Promise<T[]> {
  const results = await Promise.allSettled(nodes.map(work));
  const failures = results.flatMap((result, index) => (result.status === "rejected" ? [{ node: nodes[index], error: result.reason as unknown }] : []));
  if (failures.length) throw new NodesError(failures);
  return results.map((result) => (result as PromiseFulfilledResult<T>).value);
}

/** The useful part of nodetool's error output: its message, not the Java stack trace. */
function nodetoolMessage(result: ToolResult): string {
  const text = `${result.stderr}\n${result.stdout}`.split("-- StackTrace --")[0];
  const lines = text.split("\n").map((line) => line.trim()).filter(Boolean);
  return lines.slice(0, 4).join(" | ") || `exit code ${result.exitCode}`;
}

/** `nodetool <args>` on the node; any failure names the node and the command. */
export async function nodetool(node: CassandraNode, args: string[], timeoutMs = 600_000): Promise<string> {
  let result: ToolResult;
  try {
    result = await runTool(node.container, ["nodetool", ...args], { timeoutMs });
  } catch (error) {
    if (error instanceof ToolMissingError) throw new ToolMissingError("nodetool", `${node.container.image} (${describeNode(node)})`);
    throw new Error(`nodetool ${args[0]} on ${describeNode(node)} failed: ${messageOf(error)}`);
  }
  if (result.exitCode !== 0) throw new Error(`nodetool ${args[0]} on ${describeNode(node)} failed: ${nodetoolMessage(result)}`);
  return result.stdout;
}

/**
 * `sstableloader` inside the node, on one `<keyspace>/<table>` directory: the bulk loader reads the
 * ring through the contact points' CQL port and streams each partition to the nodes that own it
 * now. The contact points are the node's ring addresses: through 127.0.0.1 the loader would
 * also stream to 127.0.0.1, where no node listens for streaming.
 */
export async function sstableloader(node: CassandraNode, contactPoints: string[], dir: string, timeoutMs = 3_600_000): Promise<void> {
  let result: ToolResult;
  try {
    result = await runTool(node.container, ["sstableloader", "--no-progress", "-d", contactPoints.join(","), dir], { timeoutMs });
  } catch (error) {
    if (error instanceof ToolMissingError) throw new ToolMissingError("sstableloader", `${node.container.image} (${describeNode(node)})`);
    throw new Error(`sstableloader on ${describeNode(node)} failed: ${messageOf(error)}`);
  }
  if (result.exitCode !== 0) throw new Error(`sstableloader of ${dir} on ${describeNode(node)} failed: ${nodetoolMessage(result)}`);
}

export interface CqlResult {
  stdout: string;
  /** The error lines cqlsh printed (one per failed statement, `<stdin>:N:...`). */
  errors: string[];
}

/**
 * Statements through cqlsh's stdin (no size limit, nothing in argv), against the node's own CQL
 * port. cqlsh goes on after a failed statement; its errors are returned, not thrown, unless
 * `strict`.
 */
export async function cqlsh(node: CassandraNode, statements: string, options: { strict?: boolean; timeoutSeconds?: number } = {}): Promise<CqlResult> {
  const timeoutSeconds = options.timeoutSeconds ?? 300;
  let result: ToolResult;
  try {
    result = await runTool(node.container, ["cqlsh", `--request-timeout=${timeoutSeconds}`, "--connect-timeout=30"], { stdin: Buffer.from(statements), timeoutMs: (timeoutSeconds + 60) * 1000 });
  } catch (error) {
    if (error instanceof ToolMissingError) throw new ToolMissingError("cqlsh", `${node.container.image} (${describeNode(node)})`);
    throw new Error(`cqlsh on ${describeNode(node)} failed: ${messageOf(error)}`);
  }
  const errors = result.stderr
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line && !/^Warnings? ?:|Aggregation query used without partition key/.test(line));
  if (result.exitCode !== 0 && errors.length === 0) errors.push(`cqlsh exited with ${result.exitCode}: ${result.stdout.trim().slice(0, 300) || "no message"}`);
  if (/Unable to connect to any servers|Connection refused|AuthenticationFailed|Bad credentials/i.test(errors.join("\n"))) {
    const hint = /Authentication|credentials/i.test(errors.join("\n")) ? " (CQL authentication is not supported by composure yet)" : "";
    throw new Error(`cqlsh on ${describeNode(node)} cannot connect: ${errors[0]}${hint}`);
  }
  if (options.strict && errors.length) throw new Error(`cqlsh on ${describeNode(node)} failed: ${errors.slice(0, 3).join(" | ")}`);
  return { stdout: result.stdout, errors };
}

/** Rows of one `SELECT JSON ...` (strict: any error throws). */
export async function selectJson(node: CassandraNode, statement: string): Promise<Record<string, unknown>[]> {
  return jsonRows((await cqlsh(node, `${statement};\n`, { strict: true })).stdout);
}

export interface NodeIdentity {
  hostId: string;
  tokenCount: number;
  /** sha256 of the node's sorted tokens: equal when the node owns the same ranges. */
  tokensSha256: string;
  dataCenter: string;
  rack: string;
  releaseVersion: string;
  clusterName: string;
}

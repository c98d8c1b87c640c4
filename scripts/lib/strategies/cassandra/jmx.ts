// What a backup asks of every Cassandra node over JMX: table figures, a snapshot, clearing it.
// composure's own client (jmx/ComposureJmx.java, compiled into dist/ by `make install` when a
// JDK is at hand) runs as one JVM per node for the whole backup, inside the node's container
// (a session: about 0.2 s to start, then a few milliseconds a step); nodetool, which loads
// Cassandra's whole classpath, takes about 1.4 s of CPU per call and stays the fallback: for a
// checkout built without javac, and for a node the client cannot serve (its JMX elsewhere than
// 127.0.0.1:7199, a shell-less image, an operation its Cassandra lacks).
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { createInterface } from "node:readline";
import { repoRoot } from "../../checkout.ts";
import { execConversation, type Conversation } from "../../docker/containers.ts";
import { messageOf } from "../../errors.ts";
import { log } from "../../log.ts";
import { isMissingTool } from "../shared/in-container.ts";
import { tableKey } from "./cql.ts";
import { describeNode, nodetool, type CassandraNode } from "./nodes.ts";

/** The compiled client; absent when the checkout was built without javac. */
export const jmxClientClass = path.join(repoRoot, "dist", "cassandra-jmx", "ComposureJmx.class");
/** nodetool's default port, which the client uses too. */
const jmxPort = "7199";
const ready = "composure-jmx-ready";
const end = "composure-jmx-end\t";

/**
 * The class comes first on stdin, then the commands: `dd bs=1` reads exactly its bytes (no more)
 * into a folder named by its hash (a newer build never meets an older copy), or past them when it
 * is there already; the node's own JVM then runs it, as nodetool would find it.
 */
const launcher = [
  'd="/tmp/composure-jmx-$1"; n=$2; shift 2',
  'if [ -f "$d/ComposureJmx.class" ]; then dd bs=1 count="$n" of=/dev/null 2>/dev/null; else mkdir -p "$d" && dd bs=1 count="$n" of="$d/.$$" 2>/dev/null && mv "$d/.$$" "$d/ComposureJmx.class" || exit 5; fi',
  'j=java; if [ -x "$JAVA_HOME/bin/java" ]; then j="$JAVA_HOME/bin/java"; fi',
  'exec "$j" -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Xss512k -cp "$d" ComposureJmx "$@"',
].join("\n");

/** Why the client could not run, from how its process ended (or why that is not known). */
async function whyEnded(conversation: Conversation): Promise<string> {
  const result = await conversation.done.catch((error: unknown) => ({ exitCode: -1, stderr: messageOf(error) }));
  if (isMissingTool({ ...result, stdout: "" })) return "the image has no sh, or no java on its PATH";
  // The JVM may print "Picked up JAVA_TOOL_OPTIONS" before its message.
  const message = result.stderr.trim().split("\n").filter((line) => line && !line.startsWith("Picked up ")).join(" ").slice(0, 300);
  return `exit code ${result.exitCode}: ${message || "no message"}`;
}

/**
 * composure's JMX client on one node, kept for a whole backup (ComposureJmx.java). Every step
 * falls back to nodetool when the client cannot serve it, and logs why; the node refusing an
 * operation throws, as nodetool's failure would. close() ends the JVM (it also ends when
 * composure does: its stdin closes).
 */
export class JmxSession {
  private lines: string[] = [];
  private waiting?: (line: string | undefined) => void;
  private turn: Promise<unknown> = Promise.resolve();
  private closed = false;

  private constructor(
    readonly node: CassandraNode,
    private conversation: Conversation | undefined,
    /** Why the client does not serve this node (undefined: it does, or it is not built). */
    private why: string | undefined,
  ) {
    if (!conversation) return;
    createInterface({ input: conversation.output }).on("line", (line) => this.deliver(line));
    conversation.output.on("end", () => this.deliver(undefined));
  }

  /** Starts the client on the node and waits until it is connected (or known not to serve it); never rejects. */
  static async open(node: CassandraNode): Promise<JmxSession> {
    if (!existsSync(jmxClientClass)) return new JmxSession(node, undefined, undefined);
    const bytes = readFileSync(jmxClientClass);
    const version = createHash("sha256").update(bytes).digest("hex").slice(0, 12);
    let conversation: Conversation;
    try {
      conversation = await execConversation(node.container.id, ["sh", "-c", launcher, "sh", version, String(bytes.length), jmxPort]);
    } catch (error) {
      return new JmxSession(node, undefined, /executable file not found|no such file/i.test(messageOf(error)) ? "the image has no sh, or no java on its PATH" : messageOf(error));
    }
    conversation.input.on("error", () => undefined); // a client that ended: its reason comes from `done`
    conversation.input.write(bytes);
    const session = new JmxSession(node, conversation, undefined);
    const first = await session.nextLine(120_000).catch((error: unknown) => messageOf(error));
    if (first !== ready) await session.lost(first === undefined ? await whyEnded(conversation) : `it printed ${JSON.stringify(first.slice(0, 200))}`);
    return session;
  }

  private deliver(line: string | undefined): void {
    if (line === undefined) this.closed = true;
    else this.lines.push(line);
    const waiting = this.waiting;
    this.waiting = undefined;
    waiting?.(this.lines.shift()); // undefined: the client has ended and said all it had
  }

  /** The next line of the client's output; undefined once it has ended. */
  private nextLine(timeoutMs: number): Promise<string | undefined> {
    if (this.lines.length) return Promise.resolve(this.lines.shift());
    if (this.closed) return Promise.resolve(undefined);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting = undefined;
        reject(new Error(`composure's JMX client on ${describeNode(this.node)} did not answer within ${timeoutMs / 1000} s`));
      }, timeoutMs);
      this.waiting = (line) => {
        clearTimeout(timer);
        resolve(line);
      };
    });
  }

  /** The client is gone for this session: the steps after it run nodetool. */
  private async lost(why: string): Promise<void> {
    this.why = why;
    const conversation = this.conversation;
    this.conversation = undefined;
    await conversation?.kill();
  }

  /**
   * The client's answer to `command` (its lines), or undefined when it cannot serve it (the
   * caller runs nodetool; why is logged). One command at a time.
   */
  private ask(command: string[], timeoutMs: number): Promise<string[] | undefined> {
    const asked = this.turn.then(() => this.askNow(command, timeoutMs));
    this.turn = asked.catch(() => undefined);
    return asked;
  }

  private async askNow(command: string[], timeoutMs: number): Promise<string[] | undefined> {
    const fallBack = (why = this.why) => {
      if (why !== undefined) log.info(`${describeNode(this.node)}: nodetool ${command[0]} instead of composure's JMX client (${why})`);
      return undefined;
    };
    if (!this.conversation) return fallBack();
    this.conversation.input.write(`${command.join("\t")}\n`);
    const answer: string[] = [];
    for (;;) {
      let line: string | undefined;
      try {
        line = await this.nextLine(timeoutMs);
      } catch (error) {
        await this.lost(messageOf(error));
        throw error;
      }
      if (line === undefined) {
        await this.lost(await whyEnded(this.conversation!));
        return fallBack();
      }
      if (!line.startsWith(end)) {
        answer.push(line);
        continue;
      }
      const [code, ...message] = line.slice(end.length).split("\t");
      if (code === "0") return answer;
      if (code === "1") throw new Error(`${command[0]} on ${describeNode(this.node)} failed: ${message.join(" ")}`);
      const why = message.join(" ") || `code ${code}`;
      if (code === "3") await this.lost(why);
      return fallBack(why);
    }
  }

  /** The table figures of the keyspaces (all when none is named). */
  async tableStatistics(keyspaces: string[]): Promise<TableStatistics> {
    const lines = await this.ask(["tablestats", ...keyspaces], 600_000);
    if (lines !== undefined) return clientStatistics(lines.join("\n"));
    return nodetoolStatistics(this.node, await nodetool(this.node, ["tablestats", "-F", "json", ...keyspaces]));
  }

  /** Snapshot `tag` of the keyspaces on the node (it flushes the tables first). */
  async snapshot(tag: string, keyspaces: string[]): Promise<void> {
    if ((await this.ask(["snapshot", tag, ...keyspaces], 600_000)) === undefined) await nodetool(this.node, ["snapshot", "-t", tag, ...keyspaces]);
  }

  /** Removes snapshot `tag` from every keyspace of the node (nothing to remove is no error). */
  async clearSnapshot(tag: string): Promise<void> {
    if ((await this.ask(["clearsnapshot", tag], 300_000)) === undefined) await nodetool(this.node, ["clearsnapshot", "-t", tag], 300_000);
  }

  /** Ends the client (end of its input), waiting for it at most a few seconds. */
  async close(): Promise<void> {
    const conversation = this.conversation;
    this.conversation = undefined;
    if (!conversation) return;
    await this.turn;
    conversation.input.end();
    const ended = await Promise.race([conversation.done.then(() => true, () => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 5000).unref())]);
    if (!ended) await conversation.kill();
  }
}

/** Opens a session on each node at once; `work` uses them, and they are closed after it, whatever happens. */
export async function withJmxSessions<T>(nodes: CassandraNode[], work: (sessions: JmxSession[]) => Promise<T>): Promise<T> {
  const sessions = await Promise.all(nodes.map((node) => JmxSession.open(node)));
  try {
    return await work(sessions);
  } finally {
    await Promise.all(sessions.map((session) => session.close()));
  }
}

/** A node's figures per tableKey: estimated partitions and live bytes on disk. */
export interface TableStatistics {
  partitions: Map<string, number>;
  liveBytes: Map<string, number>;
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

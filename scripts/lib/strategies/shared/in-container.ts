// What the database strategies (postgres, mariadb, sqlite) share: finding the running container
// of a service, running a tool inside it with a clear error when the image lacks the tool,
// reading secrets from the container's environment (or a *_FILE inside it) without ever putting
// them into argv, option coercion for label strings, artifact names, and per-table facts.
// (Kept in postgres/ because strategy folders are the unit of ownership; the mariadb and sqlite
// strategies import it from here.)
import { createHash } from "node:crypto";
import { z } from "zod";
import type { ServiceInfo } from "../../compose/discover.ts";
import { execCapture, type ContainerInfo, type ExecOptions } from "../../docker/containers.ts";

/** The image of a service has no such program (docker exec reports 126/127). */
export class ToolMissingError extends Error {
  name = "ToolMissingError";
  constructor(readonly tool: string, readonly image: string) {
    super(`${tool} is not in the image ${image}`);
  }
}

/** The service's first running container, or an error that says how to get one. */
export function runningContainer(service: ServiceInfo): ContainerInfo {
  const container = service.containers.find((candidate) => candidate.running);
  if (!container) throw new Error(`no container of service ${service.name} is running (start it: docker compose up -d ${service.name})`);
  return container;
}

/** The container's environment (Config.Env) as a map; later entries win, as in Docker. */
export function environmentOf(container: ContainerInfo): Map<string, string> {
  const env = new Map<string, string>();
  for (const entry of container.env) {
    const equals = entry.indexOf("=");
    if (equals > 0) env.set(entry.slice(0, equals), entry.slice(equals + 1));
  }
  return env;
}

export interface ToolResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs argv inside the container and returns what it printed; a program missing from the image
 * becomes a ToolMissingError. Secrets go in `options.env`, never in argv.
 */
export async function runTool(container: ContainerInfo, argv: string[], options: ExecOptions = {}): Promise<ToolResult> {
  const result = await execCapture(container.id, argv, { timeoutMs: 120_000, ...options });
  if (isMissingTool(result)) throw new ToolMissingError(argv[0], container.image);
  return result;
}

export function isMissingTool(result: { exitCode: number; stdout: string; stderr: string }): boolean {
  if (result.exitCode !== 126 && result.exitCode !== 127) return false;
  return /executable file not found|no such file or directory|not found/i.test(`${result.stdout}\n${result.stderr}`);
}

/** The first of `programs` that the container has (tried by running `<program> --version`). */
export async function firstAvailable(container: ContainerInfo, programs: string[]): Promise<string> {
  for (const program of programs) {
    try {
      await runTool(container, [program, "--version"], { timeoutMs: 30_000 });
      return program;
    } catch (error) {
      if (!(error instanceof ToolMissingError)) throw error;
    }
  }
  throw new ToolMissingError(programs.join(" or "), container.image);
}

/**
 * A secret from the container's environment: the first of `names` that is set, either directly
 * or as `<NAME>_FILE` (the file is read inside the container: only its path is in argv).
 * Returns the name it came from too, for messages (never the value).
 */
export async function readSecret(container: ContainerInfo, names: string[]): Promise<{ value: string; from: string } | undefined> {
  const env = environmentOf(container);
  for (const name of names) {
    const value = env.get(name);
    if (value) return { value, from: name };
    const file = env.get(`${name}_FILE`);
    if (file) {
      const read = await runTool(container, ["cat", "--", file], { timeoutMs: 30_000 });
      if (read.exitCode !== 0) throw new Error(`cannot read ${name}_FILE (${file}) in the container: ${read.stderr.trim() || `cat exited with ${read.exitCode}`}`);
      return { value: read.stdout.replace(/\r?\n$/, ""), from: `${name}_FILE` };
    }
  }
  return undefined;
}

/** "a, b" (a label's value) -> ["a", "b"]; anything else (a YAML list) as it is. */
export const splitList = (value: unknown) => (typeof value === "string" ? value.split(",").map((item) => item.trim()).filter(Boolean) : value);

/** A list option: "a, b" from a label, or a YAML list from composure.yml. */
export const listOption = z.preprocess(splitList, z.array(z.string().min(1)).min(1, "give at least one name"));

/** A file name for an artifact: the name itself when it is plain, else a safe form plus a hash. */
export function artifactBaseName(name: string): string {
  const plain = name.replace(/[^A-Za-z0-9._-]/g, "_").replace(/^\.+/, "_");
  if (plain === name && plain.length > 0 && plain.length <= 100) return plain;
  return `${plain.slice(0, 80)}-${createHash("sha256").update(name).digest("hex").slice(0, 8)}`;
}

/** Tables and exact row counts of one database, as recorded in an artifact's facts. */
export interface TableFacts {
  /** Number of tables (all of them, even beyond the counted ones). */
  tables: number;
  /** Sum of the counted rows. */
  rows: number;
  /** Table -> exact row count, for at most `maxCountedTables` tables (by name). */
  counts: Record<string, number>;
  /** False when there were more tables than were counted. */
  complete: boolean;
}

export const maxCountedTables = 200;

export function tableFacts(counts: Record<string, number>, tables: number): TableFacts {
  const rows = Object.values(counts).reduce((sum, count) => sum + count, 0);
  return { tables, rows, counts, complete: Object.keys(counts).length >= tables };
}

/** Differences between recorded and live facts, one readable line each (empty: they agree). */
export function compareTableFacts(label: string, recorded: Partial<TableFacts> | undefined, live: TableFacts | undefined): string[] {
  if (!recorded?.counts) return [];
  if (!live) return [`${label}: missing`];
  const lines: string[] = [];
  if (recorded.tables !== undefined && recorded.tables !== live.tables) lines.push(`${label}: ${live.tables} tables, recorded ${recorded.tables}`);
  for (const [table, count] of Object.entries(recorded.counts)) {
    const now = live.counts[table];
    if (now === undefined) lines.push(`${label}: table ${table} is missing (recorded ${count} rows)`);
    else if (now !== count) lines.push(`${label}: table ${table} has ${now} rows, recorded ${count}`);
  }
  return lines;
}

/** Digits grouped by thousands, for messages. */
export const formatCount = (count: number) => count.toLocaleString("en-US");

/** "registry:5000/a/b:tag@sha256:x" -> ["a", "b"] (lower case; the registry host dropped). */
export function imagePath(image: string): string[] {
  let name = image.toLowerCase().split("@")[0];
  const slash = name.lastIndexOf("/");
  const colon = name.lastIndexOf(":");
  if (colon > slash) name = name.slice(0, colon);
  const segments = name.split("/").filter(Boolean);
  if (segments.length > 1 && /[.:]|^localhost$/.test(segments[0])) segments.shift();
  return segments;
}

// What the database strategies (postgres, mariadb, sqlite) share: finding the running container
// of a service, running a tool inside it with a clear error when the image lacks the tool,
// reading secrets from the container's environment (or a *_FILE inside it) without ever putting
// them into argv, option coercion for label strings, artifact names, and per-table facts.
// The dump strategies (postgres, mariadb) also share their base options, the choice of
// databases, archive checks, rescue dumps and the probe against recorded table facts.
import { createHash } from "node:crypto";
import { z } from "zod";
import type { Artifact } from "../../catalog/manifest.ts";
import type { ServiceInfo } from "../../compose/discover.ts";
import { execCapture, type ContainerInfo, type ExecOptions } from "../../docker/containers.ts";
import { StepError } from "../../errors.ts";
import { formatCount, log } from "../../log.ts";
import type { ProbeResult, RestoreContext } from "../types.ts";
import type { ArtifactStore } from "../../store/types.ts";

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
  /**
   * Tables written to while the dump ran, counted before and after it: [fewer, more] rows. The
   * dump holds a count between the two (inserts and updates); `counts` has the count before.
   */
  bounds?: Record<string, [number, number]>;
}

export const maxCountedTables = 200;

export function tableFacts(counts: Record<string, number>, tables: number): TableFacts {
  const rows = Object.values(counts).reduce((sum, count) => sum + count, 0);
  return { tables, rows, counts, complete: Object.keys(counts).length >= tables };
}

/** Facts counted before and after a dump that is not taken in the counting transaction: tables whose counts moved get bounds. */
export function boundTableFacts(before: TableFacts, after: TableFacts): TableFacts {
  const bounds: Record<string, [number, number]> = {};
  for (const [table, count] of Object.entries(before.counts)) {
    const later = after.counts[table];
    if (later !== undefined && later !== count) bounds[table] = [Math.min(count, later), Math.max(count, later)];
  }
  return Object.keys(bounds).length ? { ...before, bounds } : before;
}

/** Differences between recorded and live facts, one readable line each (empty: they agree). */
export function compareTableFacts(label: string, recorded: Partial<TableFacts> | undefined, live: TableFacts | undefined): string[] {
  if (!recorded?.counts) return [];
  if (!live) return [`${label}: missing`];
  const lines: string[] = [];
  if (recorded.tables !== undefined && recorded.tables !== live.tables) lines.push(`${label}: ${live.tables} tables, recorded ${recorded.tables}`);
  for (const [table, count] of Object.entries(recorded.counts)) {
    const now = live.counts[table];
    const bounds = recorded.bounds?.[table];
    if (now === undefined) lines.push(`${label}: table ${table} is missing (recorded ${count} rows)`);
    else if (bounds && (now < bounds[0] || now > bounds[1])) lines.push(`${label}: table ${table} has ${now} rows, recorded between ${bounds[0]} and ${bounds[1]} (written to during the dump)`);
    else if (!bounds && now !== count) lines.push(`${label}: table ${table} has ${now} rows, recorded ${count}`);
  }
  return lines;
}

export { formatCount };

/** The options of a recorded run (restore, probe): as recorded when they still parse, else the defaults. */
export function optionsOrDefaults<T>(schema: z.ZodType<T, z.ZodTypeDef, unknown>, raw: unknown): T {
  const parsed = schema.safeParse(raw ?? {});
  return parsed.success ? parsed.data : schema.parse({});
}

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

// ---------------------------------------------------------------------------------------------
// Dump strategies (postgres, mariadb): one artifact per database plus one of accounts/roles.

/** The options both dump strategies take; each adds its own and makes the object strict. */
export const dumpOptions = z.object({
  /** Databases to back up (default: every user database; each strategy says which those are). */
  databases: listOption.optional(),
  /** The account to connect as (default: each strategy's). */
  user: z.string().min(1).optional(),
  /** Name of an environment variable of the container that holds the password. */
  password_env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "expected an environment variable name").optional(),
});

/** How a dump strategy reaches its server inside the container. */
export interface DumpConnection {
  service: string;
  container: ContainerInfo;
  user: string;
  /** The password (PGPASSWORD, MYSQL_PWD) when there is one, and friends, for the exec's environment. */
  env: string[];
  /** Where the password came from, for messages (never the password). */
  passwordFrom?: string;
}

/** What the shared pieces need to know about a dump strategy. */
export interface DumpEngine {
  /** The strategy's kind: composure.<kind>.* options, messages, rescue records. */
  kind: string;
  /** facts.kind of the artifact that holds the accounts ("globals", "users"), and how messages name it. */
  accounts: string;
  accountsLabel: string;
  /** Said when the image lacks a tool the strategy runs. */
  toolsHint: string;
}

/** An error of a phase as a StepError naming the service; a missing tool gets the engine's hint. */
export function asStepError(engine: DumpEngine, phase: string, service: string, error: unknown): Error {
  if (error instanceof StepError) return error;
  if (error instanceof ToolMissingError) return new StepError(phase, service, error, engine.toolsHint);
  return new StepError(phase, service, error);
}

/** The password in the container variable that the password_env option names (or its _FILE). */
export async function readPasswordEnv(engine: DumpEngine, container: ContainerInfo, name: string): Promise<{ value: string; from: string }> {
  const password = await readSecret(container, [name]);
  if (!password) throw new Error(`composure.${engine.kind}.password_env names ${name}, which is not set in the container (nor ${name}_FILE)`);
  return password;
}

/** The databases option checked against what the server has (default: all of them). */
export function chooseDatabases(engine: DumpEngine, service: string, existing: string[], wanted: string[] | undefined): string[] {
  if (!wanted) return existing;
  const missing = wanted.filter((name) => !existing.includes(name));
  if (missing.length) throw new Error(`database${missing.length > 1 ? "s" : ""} ${missing.join(", ")} named in composure.${engine.kind}.databases do${missing.length > 1 ? "" : "es"} not exist in service ${service} (it has: ${existing.join(", ") || "none"})`);
  return wanted;
}

/** artifactBaseName, made unique among those used already (and unlike the reserved ones) by trailing underscores. */
export function uniqueArtifactBaseName(name: string, used: Set<string>, reserved: string[] = []): string {
  let base = artifactBaseName(name);
  while (used.has(base) || reserved.includes(base)) base = `${base}_`;
  used.add(base);
  return base;
}

/** "database" or the engine's accounts kind; anything else is not a dump of this engine. */
export function dumpKindOf(engine: DumpEngine, artifact: Artifact): string {
  const kind = artifact.facts?.kind;
  if (kind === engine.accounts || (kind === "database" && typeof artifact.facts?.database === "string")) return kind;
  throw new Error(`artifact ${artifact.path} is not a ${engine.kind} dump composure knows (facts.kind ${JSON.stringify(kind)})`);
}

/** The service a restore loads into; a dump restore needs it running. */
export function serviceToRestoreInto(ctx: RestoreContext<unknown>): ServiceInfo {
  if (!ctx.service) throw new StepError("restore", ctx.serviceName, new Error(`service ${ctx.serviceName} does not run in project ${ctx.project.name}`), `a database restore loads into the running server: start it (docker compose up -d ${ctx.serviceName}), then restore again`);
  return ctx.service;
}

/** The artifacts of a restore, accounts first (the databases' objects may belong to them). */
export function accountsFirst(engine: DumpEngine, artifacts: Artifact[]): Artifact[] {
  const isAccounts = (artifact: Artifact) => Number(dumpKindOf(engine, artifact) === engine.accounts);
  return [...artifacts].sort((a, b) => isAccounts(b) - isAccounts(a));
}

/**
 * Dumps what a restore is about to replace (the databases that exist, and the accounts when the
 * run has them) into the rescue run, restorable like any run.
 */
export async function keepRescueDumps(
  ctx: RestoreContext<unknown>,
  engine: DumpEngine,
  artifacts: Artifact[],
  existing: string[],
  capture: (databases: string[], store: ArtifactStore, withAccounts: boolean) => Promise<Artifact[]>,
): Promise<void> {
  const replaced = artifacts.filter((artifact) => dumpKindOf(engine, artifact) === "database" && existing.includes(artifact.facts!.database as string)).map((artifact) => artifact.facts!.database as string);
  const withAccounts = artifacts.some((artifact) => dumpKindOf(engine, artifact) === engine.accounts);
  if (!replaced.length && !withAccounts) return;
  const rescued = await capture(replaced, await ctx.rescue!.store(ctx.serviceName), withAccounts);
  for (const artifact of rescued) ctx.rescue!.add(ctx.serviceName, artifact, engine.kind);
  log.info(`${ctx.serviceName}: kept a rescue dump of ${rescued.map((artifact) => (artifact.facts?.database as string | undefined) ?? engine.accountsLabel).join(", ")} in the rescue run`);
}

/**
 * Live table facts of the databases (those of the recorded artifacts, else the chosen ones) and,
 * with recorded artifacts, every difference from the facts recorded at backup time.
 */
export async function probeDatabases<Facts extends TableFacts>(
  engine: DumpEngine,
  probe: { service: string; serverVersion: string; existing: string[]; wanted: string[] | undefined; liveFacts: (database: string) => Promise<Facts> },
  recorded?: Artifact[],
): Promise<ProbeResult> {
  const { existing } = probe;
  const expected = (recorded ?? []).filter((artifact) => artifact.facts?.kind === "database");
  const names = recorded ? expected.map((artifact) => artifact.facts!.database as string) : chooseDatabases(engine, probe.service, existing, probe.wanted);
  const databases: Record<string, Facts | null> = {};
  const differences: string[] = [];
  for (const name of names) {
    databases[name] = existing.includes(name) ? await probe.liveFacts(name) : null;
    const artifact = expected.find((candidate) => candidate.facts!.database === name);
    if (artifact) differences.push(...compareTableFacts(name, artifact.facts as Partial<TableFacts>, databases[name] ?? undefined));
  }
  const recordedFacts = recorded ? Object.fromEntries(expected.map((artifact) => [artifact.facts!.database as string, artifact.facts])) : undefined;
  return { ok: differences.length === 0, differences, facts: { serverVersion: probe.serverVersion, databases, ...(recorded ? { recorded: recordedFacts, differences } : {}) } };
}

// The `postgres` strategy: hot, consistent dumps of a PostgreSQL service, taken inside its own
// container with docker exec (the server keeps running: no downtime).
//
// Backup: roles and tablespaces with `pg_dumpall --globals-only` (globals.sql.zst), then each
// database with `pg_dump -Fc` (<db>.pgdump.zst). For each database a psql session opens a
// REPEATABLE READ transaction and exports its snapshot; the table row counts recorded in the
// manifest are taken in that snapshot and pg_dump dumps exactly that snapshot (--snapshot), so
// the facts describe the dump exactly. pg_dump writes uncompressed (-Z0): zstd on the host is
// multi-threaded and faster.
// Restore (into the running service): roles first (existing ones are kept and get the backup's
// attributes), then per database: check the archive, keep a rescue dump of the database being
// replaced, DROP DATABASE ... WITH (FORCE), then `pg_restore --create` (the original owner,
// encoding, locale and database settings come back; ownership of objects is kept, roles exist).
// With jobs > 1 the dump is first copied into the container (pg_restore -j needs a file).
// Credentials: POSTGRES_USER / POSTGRES_PASSWORD (or *_FILE) of the container, or the options;
// the password travels as PGPASSWORD in the exec's environment, never in argv, logs or manifest.
import { randomUUID } from "node:crypto";
import { PassThrough } from "node:stream";
import { z } from "zod";
import { dumpToStore, loadFromStore } from "../../store/exec-stream.ts";
import type { ArtifactStore, StoredArtifact } from "../../store/types.ts";
import type { Artifact } from "../../catalog/manifest.ts";
import type { ServiceInfo } from "../../compose/discover.ts";
import { execStreaming, type ExecResult } from "../../docker/containers.ts";
import { messageOf } from "../../errors.ts";
import { formatSeconds, log } from "../../log.ts";
import type { RestoreContext } from "../types.ts";
import {
  asStepError,
  compareTableFacts,
  dumpOptions,
  environmentOf,
  formatCount,
  imagePath,
  maxCountedTables,
  readPasswordEnv,
  readSecret,
  runTool,
  runningContainer,
  tableFacts,
  uniqueArtifactBaseName,
  type DumpConnection,
  type DumpEngine,
  type TableFacts,
} from "../shared/in-container.ts";
import { dumpStrategy } from "../shared/dump-family.ts";

/**
 * databases: default every database that is not a template; user: default the container's
 * POSTGRES_USER, else postgres.
 */
export const postgresOptions = dumpOptions
  .extend({
    /** Parallel pg_restore jobs (the dump is copied into the container first when > 1). */
    jobs: z.coerce.number().int().min(1).max(32).default(1),
  })
  .strict();

export type PostgresOptions = z.infer<typeof postgresOptions>;

/** Image names (registry, tag and digest stripped) that are PostgreSQL servers. */
export function isPostgresImage(image: string): boolean {
  const segments = imagePath(image);
  const last = segments.at(-1) ?? "";
  if (["postgres", "postgresql", "postgis", "pgvector", "postgresql-repmgr"].includes(last)) return true;
  if (last.startsWith("timescaledb")) return true;
  return segments.length > 1 && ["timescale", "postgis"].includes(segments.at(-2)!) && last !== "pgbouncer";
}

// ---------------------------------------------------------------------------------------------
// Connection: who to connect as, with which password, and the checks that name the cause.

type Connection = DumpConnection;

interface Server {
  versionNum: number;
  version: string;
  /** The database to connect to for CREATE/DROP DATABASE. */
  maintenance: string;
}

const engine: DumpEngine = {
  kind: "postgres",
  accounts: "globals",
  accountsLabel: "the roles",
  toolsHint: "the postgres strategy runs pg_isready, psql, pg_dump and pg_restore inside the service's container: use an image with the PostgreSQL client tools, or composure.strategy=volume",
};

async function connect(service: ServiceInfo, options: PostgresOptions): Promise<Connection> {
  const container = runningContainer(service);
  const env = environmentOf(container);
  let user = options.user;
  if (!user) user = (await readSecret(container, ["POSTGRES_USER"]))?.value;
  if (!user && env.get("POSTGRESQL_POSTGRES_PASSWORD")) user = "postgres"; // bitnami: the superuser
  user ??= env.get("POSTGRESQL_USERNAME") || "postgres";
  let password: { value: string; from: string } | undefined;
  if (options.password_env) {
    password = await readPasswordEnv(engine, container, options.password_env);
  } else {
    password = await readSecret(container, ["POSTGRES_PASSWORD", user === "postgres" ? "POSTGRESQL_POSTGRES_PASSWORD" : "POSTGRESQL_PASSWORD"]);
  }
  const execEnv = ["PGAPPNAME=composure", "PGCONNECT_TIMEOUT=15"];
  if (password) execEnv.push(`PGPASSWORD=${password.value}`);
  return { service: service.name, container, user, env: execEnv, passwordFrom: password?.from };
}

/** "dbname='...'" so that any database name (even one with = or spaces) is taken literally. */
export function conninfo(database: string): string {
  return `dbname='${database.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
}

export const quoteIdent = (name: string) => `"${name.replace(/"/g, '""')}"`;
export const quoteLiteral = (text: string) => `'${text.replace(/'/g, "''")}'`;

/** Runs one SQL statement with psql (unaligned, tuples only) and returns its output. */
async function psql(conn: Connection, database: string, sql: string, timeoutMs = 120_000): Promise<string> {
  const result = await runTool(conn.container, ["psql", "-X", "-w", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-U", conn.user, "-d", conninfo(database), "-c", sql], { env: conn.env, timeoutMs });
  if (result.exitCode !== 0) throw new Error(`psql exited with ${result.exitCode}: ${result.stderr.trim() || result.stdout.trim()}`);
  return result.stdout.trim();
}

/** pg_isready, then a real login: each failure says what is wrong (not ready, password, user, tools). */
async function checkServer(conn: Connection): Promise<Server> {
  const ready = await runTool(conn.container, ["pg_isready", "-U", conn.user, "-t", "10"], { timeoutMs: 30_000 });
  if (ready.exitCode === 1) throw new Error(`PostgreSQL is not ready: it is starting up or shutting down and rejects connections (pg_isready: ${ready.stdout.trim()})`);
  if (ready.exitCode === 2) throw new Error(`PostgreSQL is not ready: the server does not answer (pg_isready: ${ready.stdout.trim() || "no response"}); is it running in this container?`);
  if (ready.exitCode !== 0) throw new Error(`pg_isready exited with ${ready.exitCode}: ${ready.stderr.trim() || ready.stdout.trim()}`);
  let row: string;
  try {
    row = await psql(conn, "template1", "SELECT current_setting('server_version_num') || '|' || current_setting('server_version') || '|' || EXISTS (SELECT 1 FROM pg_database WHERE datname = 'postgres' AND datallowconn)");
  } catch (error) {
    const message = messageOf(error);
    if (/password authentication failed|no password supplied|authentication failed/i.test(message)) {
      throw new Error(`wrong password for user ${conn.user} (${conn.passwordFrom ? `from ${conn.passwordFrom}` : "no password found in the container's environment"}): ${firstLine(message)}`);
    }
    if (/role .* does not exist/i.test(message)) throw new Error(`user ${conn.user} does not exist in this server: set composure.postgres.user (${firstLine(message)})`);
    throw error;
  }
  const [num, version, hasPostgres] = row.split("|");
  return { versionNum: Number(num), version, maintenance: hasPostgres === "t" ? "postgres" : "template1" };
}

const firstLine = (text: string) => text.split("\n").find((line) => line.trim())?.replace(/^.*?(FATAL|ERROR):\s*/, "").trim() ?? text;

/** Connects and checks, with every failure as a StepError naming the service and the cause. */
async function open(phase: string, service: ServiceInfo, options: PostgresOptions, tool = "pg_dump"): Promise<{ conn: Connection; server: Server }> {
  try {
    const conn = await connect(service, options);
    await runTool(conn.container, [tool, "--version"], { timeoutMs: 30_000 });
    return { conn, server: await checkServer(conn) };
  } catch (error) {
    throw asStepError(engine, phase, service.name, error);
  }
}

async function listDatabases(conn: Connection, server: Server): Promise<string[]> {
  const json = await psql(conn, server.maintenance, "SELECT coalesce(json_agg(datname ORDER BY datname), '[]') FROM pg_database WHERE NOT datistemplate AND datallowconn");
  return JSON.parse(json) as string[];
}

// ---------------------------------------------------------------------------------------------
// Facts: tables and exact row counts (query_to_xml runs a count(*) per table in one statement).

const factsSql = `
SELECT json_build_object(
  'tables', (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'),
  'counts', (SELECT coalesce(json_object_agg(name, rows ORDER BY name), '{}') FROM (
     SELECT n.nspname || '.' || c.relname AS name,
            (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %I.%I', n.nspname, c.relname), false, true, '')))[1]::text::bigint AS rows
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
     ORDER BY 1 LIMIT ${maxCountedTables}) AS counted),
  'owner', (SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()),
  'bytes', pg_database_size(current_database()))`;

interface DatabaseFacts extends TableFacts {
  owner: string;
  bytes: number;
}

function parseFacts(json: string): DatabaseFacts {
  const raw = JSON.parse(json) as { tables: number; counts: Record<string, number>; owner: string; bytes: number };
  return { ...tableFacts(raw.counts, raw.tables), owner: raw.owner, bytes: raw.bytes };
}

async function liveFacts(conn: Connection, database: string): Promise<DatabaseFacts> {
  return parseFacts(await psql(conn, database, factsSql, 600_000));
}

/**
 * A psql session fed statement by statement through stdin; each answer is read up to a marker
 * that psql echoes after it. Used to hold a snapshot open while pg_dump uses it.
 */
class PsqlSession {
  private readonly input = new PassThrough();
  private output = "";
  private marker = 0;
  private notify: (() => void) | undefined;
  private ended = false;
  private readonly finished: Promise<ExecResult>;

  constructor(conn: Connection, database: string) {
    const stdout = new PassThrough();
    stdout.on("data", (chunk: Buffer) => {
      this.output += chunk.toString("utf8");
      this.notify?.();
    });
    const argv = ["psql", "-X", "-w", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-U", conn.user, "-d", conninfo(database)];
    this.finished = execStreaming(conn.container.id, argv, stdout, { env: conn.env, stdin: this.input }).finally(() => {
      this.ended = true;
      this.notify?.();
    });
    this.finished.catch(() => undefined);
  }

  async query(sql: string): Promise<string> {
    const marker = `__composure_${++this.marker}__`;
    this.input.write(`${sql};\n\\echo ${marker}\n`);
    for (;;) {
      const at = this.output.indexOf(`${marker}\n`);
      if (at >= 0) {
        const answer = this.output.slice(0, at);
        this.output = this.output.slice(at + marker.length + 1);
        return answer.trim();
      }
      if (this.ended) {
        const result = await this.finished;
        throw new Error(`psql ended (exit ${result.exitCode}): ${result.stderr.trim() || this.output.trim() || "no message"}`);
      }
      await new Promise<void>((resolve) => (this.notify = resolve));
      this.notify = undefined;
    }
  }

  async close(): Promise<void> {
    this.input.end("COMMIT;\n");
    await this.finished.catch(() => undefined);
  }
}

// ---------------------------------------------------------------------------------------------
// Capture

async function dumpGlobals(conn: Connection, store: ArtifactStore): Promise<{ stored: StoredArtifact; rolePasswords: boolean }> {
  const argv = ["pg_dumpall", "-w", "--globals-only", "-U", conn.user];
  const options = { env: conn.env, label: `${conn.service}: roles` };
  try {
    return { stored: await dumpToStore(store, "globals.sql", conn.container.id, argv, options), rolePasswords: true };
  } catch (error) {
    // Without superuser rights pg_authid is unreadable: roles are still worth having, without passwords.
    if (!/permission denied/i.test(messageOf(error))) throw error;
    log.warn(`${conn.service}: ${conn.user} may not read role passwords: roles are backed up without them`);
    const stored = await dumpToStore(store, "globals.sql", conn.container.id, [...argv, "--no-role-passwords"], options);
    return { stored, rolePasswords: false };
  }
}

/** pg_dump of one database in a snapshot whose row counts are recorded with it. */
async function dumpDatabase(conn: Connection, database: string, store: ArtifactStore, name: string): Promise<{ stored: StoredArtifact; facts: DatabaseFacts; seconds: number }> {
  const started = performance.now();
  const session = new PsqlSession(conn, database);
  try {
    await session.query("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY");
    const snapshot = await session.query("SELECT pg_export_snapshot()");
    if (!/^[0-9A-F-]+$/i.test(snapshot)) throw new Error(`unexpected snapshot id from the server: ${JSON.stringify(snapshot.slice(0, 80))}`);
    const facts = parseFacts(await session.query(factsSql));
    const argv = ["pg_dump", "-w", "-Fc", "-Z0", `--snapshot=${snapshot}`, "-U", conn.user, "-d", conninfo(database)];
    const stored = await dumpToStore(store, name, conn.container.id, argv, { env: conn.env, label: `${conn.service}: pg_dump ${database}` });
    return { stored, facts, seconds: (performance.now() - started) / 1000 };
  } finally {
    await session.close();
  }
}

async function captureAll(conn: Connection, server: Server, databases: string[], store: ArtifactStore, withGlobals: boolean): Promise<Artifact[]> {
  const artifacts: Artifact[] = [];
  if (withGlobals) {
    const roles = Number(await psql(conn, server.maintenance, "SELECT count(*) FROM pg_roles WHERE rolname !~ '^pg_'"));
    const { stored, rolePasswords } = await dumpGlobals(conn, store);
    artifacts.push({ ...stored, facts: { kind: "globals", engine: "postgres", roles, rolePasswords, serverVersion: server.version } });
  }
  const used = new Set<string>();
  for (const database of databases) {
    const { stored, facts, seconds } = await dumpDatabase(conn, database, store, `${uniqueArtifactBaseName(database, used)}.pgdump`);
    log.info(`${conn.service}: database ${database}: ${facts.tables} tables, ${formatCount(facts.rows)} rows dumped in ${formatSeconds(seconds)}`);
    artifacts.push({
      ...stored,
      facts: { kind: "database", engine: "postgres", format: "custom", database, serverVersion: server.version, snapshot: true, ...facts },
    });
  }
  return artifacts;
}

// ---------------------------------------------------------------------------------------------
// Restore

/**
 * pg_dumpall's globals made re-runnable on a server that has some of them: CREATE ROLE becomes
 * "create unless it exists" (the ALTER ROLE that follows sets the backup's attributes), and
 * tablespaces that exist already are left out.
 */
export function idempotentGlobals(sql: string, existingTablespaces: string[]): string {
  return sql
    .split("\n")
    .map((line) => {
      const role = /^CREATE ROLE (.+);$/.exec(line);
      if (role) return `DO $composure$ BEGIN CREATE ROLE ${role[1]}; EXCEPTION WHEN duplicate_object THEN NULL; END $composure$;`;
      const tablespace = /^CREATE TABLESPACE ("(?:[^"]|"")+"|\S+) /.exec(line);
      if (tablespace) {
        const name = tablespace[1].startsWith('"') ? tablespace[1].slice(1, -1).replace(/""/g, '"') : tablespace[1];
        if (existingTablespaces.includes(name)) return `-- tablespace ${tablespace[1]} exists already`;
      }
      return line;
    })
    .join("\n");
}

async function restoreGlobals(ctx: RestoreContext<unknown>, conn: Connection, server: Server, artifact: Artifact): Promise<string> {
  const tablespaces = JSON.parse(await psql(conn, server.maintenance, "SELECT coalesce(json_agg(spcname), '[]') FROM pg_tablespace")) as string[];
  const sql = idempotentGlobals(await ctx.reader.readText(artifact), tablespaces);
  const result = await runTool(conn.container, ["psql", "-X", "-w", "-q", "-v", "ON_ERROR_STOP=1", "-U", conn.user, "-d", conninfo(server.maintenance)], { env: conn.env, stdin: Buffer.from(sql), timeoutMs: 600_000 });
  if (result.exitCode !== 0) throw new Error(`restoring roles from ${artifact.path} failed: ${result.stderr.trim() || `psql exited with ${result.exitCode}`}`);
  return `restored roles and tablespaces from ${artifact.path} (existing roles kept, with the backup's attributes)`;
}

async function restoreDatabase(ctx: RestoreContext<unknown>, conn: Connection, server: Server, artifact: Artifact, jobs: number): Promise<string> {
  const database = artifact.facts!.database as string;
  const started = performance.now();
  const drop =
    server.versionNum >= 130000
      ? `DROP DATABASE IF EXISTS ${quoteIdent(database)} WITH (FORCE)`
      : `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = ${quoteLiteral(database)} AND pid <> pg_backend_pid()`;
  // The maintenance database itself is replaced from template1.
  const via = database === server.maintenance ? "template1" : server.maintenance;
  await psql(conn, via, drop);
  if (server.versionNum < 130000) await psql(conn, via, `DROP DATABASE IF EXISTS ${quoteIdent(database)}`);
  const restoreArgv = ["pg_restore", "-w", "-U", conn.user, "--create", "-d", conninfo(via)];
  if (jobs <= 1) {
    await loadFromStore(ctx.reader.read(artifact), conn.container.id, restoreArgv, { env: conn.env, label: `${conn.service}: pg_restore ${database}` });
  } else {
    const temporary = `/tmp/composure-restore-${randomUUID()}.pgdump`;
    try {
      await loadFromStore(ctx.reader.read(artifact), conn.container.id, ["sh", "-c", 'umask 077 && cat > "$1"', "sh", temporary], { label: `${conn.service}: copy ${database} into the container` });
      const result = await runTool(conn.container, [...restoreArgv, "-j", String(jobs), temporary], { env: conn.env, timeoutMs: 0 });
      if (result.exitCode !== 0) throw new Error(`pg_restore exited with ${result.exitCode}: ${result.stderr.trim() || "no message"}`);
    } finally {
      await runTool(conn.container, ["rm", "-f", temporary], { timeoutMs: 60_000 }).catch(() => undefined);
    }
  }
  const seconds = (performance.now() - started) / 1000;
  const live = await liveFacts(conn, database);
  const differences = compareTableFacts(database, artifact.facts as Partial<TableFacts>, live);
  const summary = `restored database ${database} from ${artifact.path} in ${formatSeconds(seconds)}${jobs > 1 ? ` (${jobs} jobs)` : ""}: ${live.tables} tables, ${formatCount(live.rows)} rows`;
  if (differences.length) {
    log.warn(`${ctx.serviceName}: database ${database} differs from the facts recorded at backup time (written to since?): ${differences.slice(0, 5).join("; ")}`);
    return `${summary} (differs from the recorded facts: ${differences.length} table(s))`;
  }
  return `${summary}, as recorded at backup time`;
}

// ---------------------------------------------------------------------------------------------

export const postgresStrategy = dumpStrategy<PostgresOptions, Connection, Server>({
  engine,
  options: postgresOptions,
  detect: (service) => isPostgresImage(service.image),
  open: (phase, service, options) => open(phase, service, options, { prepare: "pg_dump", restore: "pg_restore", probe: "psql" }[phase]),
  listDatabases,
  capture: captureAll,
  dropping: "disconnecting its sessions",
  describeAccounts: (artifact) => `would restore roles and tablespaces from ${artifact.path} (create missing ones, give existing ones the backup's attributes)`,
  describeDatabase(artifact, replaces, options) {
    const facts = artifact.facts as Partial<TableFacts>;
    return `would restore database ${artifact.facts!.database} from ${artifact.path}: ${replaces} create it and pg_restore ${facts.tables ?? "?"} tables, ${formatCount(facts.rows ?? 0)} rows${options.jobs > 1 ? ` with ${options.jobs} jobs` : ""}`;
  },
  restoreAccounts: restoreGlobals,
  restoreDatabase: (ctx, conn, server, artifact, options) => restoreDatabase(ctx, conn, server, artifact, options.jobs),
  liveFacts,
});

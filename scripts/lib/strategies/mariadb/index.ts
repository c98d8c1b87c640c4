// The `mariadb` strategy (MariaDB and MySQL): hot, consistent dumps taken inside the service's
// container with docker exec; the server keeps running.
//
// Backup: one artifact per user database (<db>.sql.zst), `mariadb-dump` (or `mysqldump` where
// the image has no mariadb-dump) with --single-transaction (a consistent snapshot of InnoDB
// tables without locking them) --routines --events --triggers --hex-blob; row counts per table
// are recorded just before each dump and again after it (a table written to meanwhile is recorded
// with both counts as bounds). The system schemas (mysql, information_schema,
// performance_schema, sys) are not dumped: restoring the `mysql` schema over a running server is
// unsafe across versions. Instead the accounts and their grants (except root and the system
// accounts) are kept in users.sql.zst, generated from SHOW CREATE USER / SHOW GRANTS.
// Restore (into the running service): accounts first (created when missing, grants applied),
// then per database: check the archive, keep a rescue dump of the database being replaced,
// disconnect its sessions, DROP DATABASE, and feed the dump to the `mariadb`/`mysql` client.
// Credentials: root with MARIADB_ROOT_PASSWORD / MYSQL_ROOT_PASSWORD (or *_FILE, read inside the
// container), or the options; the password travels as MYSQL_PWD in the exec's environment,
// never in argv, logs or the manifest.
import { Readable } from "node:stream";
import type { z } from "zod";
import { dumpToStore, loadFromStore } from "../../store/exec-stream.ts";
import type { ArtifactStore, StoredArtifact } from "../../store/types.ts";
import type { Artifact } from "../../catalog/manifest.ts";
import type { ServiceInfo } from "../../compose/discover.ts";
import { formatSeconds, log } from "../../log.ts";
import type { RestoreContext } from "../types.ts";
import {
  asStepError,
  boundTableFacts,
  compareTableFacts,
  dumpOptions,
  environmentOf,
  firstAvailable,
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

/** databases: default every database but the system schemas; user: default root. */
export const mariadbOptions = dumpOptions.strict();

export type MariadbOptions = z.infer<typeof mariadbOptions>;

export const systemSchemas = ["information_schema", "performance_schema", "sys", "mysql"];
const systemAccounts = ["root", "mariadb.sys", "mysql.sys", "mysql.session", "mysql.infoschema"];

/** MariaDB, MySQL and Percona server images (registry, tag and digest stripped). */
export function isMariadbImage(image: string): boolean {
  const last = imagePath(image).at(-1) ?? "";
  return ["mariadb", "mysql", "mysql-server", "percona", "percona-server", "mariadb-galera"].includes(last);
}

// ---------------------------------------------------------------------------------------------
// Connection

interface Connection extends DumpConnection {
  client: string;
  dump: string;
}

interface Server {
  version: string;
  isMariadb: boolean;
}

const engine: DumpEngine = {
  kind: "mariadb",
  accounts: "users",
  accountsLabel: "the accounts",
  toolsHint: "the mariadb strategy runs the mariadb (or mysql) client and mariadb-dump (or mysqldump) inside the service's container: use an image with them, or composure.strategy=volume",
};

async function connect(service: ServiceInfo, options: MariadbOptions): Promise<Connection> {
  const container = runningContainer(service);
  const env = environmentOf(container);
  const user = options.user ?? "root";
  let password: { value: string; from: string } | undefined;
  if (options.password_env) {
    password = await readPasswordEnv(engine, container, options.password_env);
  } else if (user === "root") {
    password = await readSecret(container, ["MARIADB_ROOT_PASSWORD", "MYSQL_ROOT_PASSWORD"]);
    if (!password && (env.get("MARIADB_RANDOM_ROOT_PASSWORD") || env.get("MYSQL_RANDOM_ROOT_PASSWORD"))) {
      throw new Error("the root password is random (MARIADB_RANDOM_ROOT_PASSWORD) and unknown to composure: create an account for backups and set composure.mariadb.user and composure.mariadb.password_env");
    }
  } else if (user === (env.get("MARIADB_USER") ?? env.get("MYSQL_USER"))) {
    password = await readSecret(container, ["MARIADB_PASSWORD", "MYSQL_PASSWORD"]);
  }
  const dump = await firstAvailable(container, ["mariadb-dump", "mysqldump"]);
  const client = await firstAvailable(container, ["mariadb", "mysql"]);
  return { service: service.name, container, user, env: password ? [`MYSQL_PWD=${password.value}`] : [], passwordFrom: password?.from, client, dump };
}

export const quoteName = (name: string) => `\`${name.replace(/`/g, "``")}\``;
export const quoteString = (text: string) => `'${text.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;

const clientArgs = (conn: Connection) => [conn.client, "-u", conn.user, "--connect-timeout=15", "--default-character-set=utf8mb4"];

/** Runs SQL with the client in batch mode (tab-separated, no headers, raw) and returns its rows. */
async function sql(conn: Connection, statement: string, timeoutMs = 120_000): Promise<string[][]> {
  const result = await runTool(conn.container, [...clientArgs(conn), "-N", "-B", "-r", "-e", statement], { env: conn.env, timeoutMs });
  if (result.exitCode !== 0) throw new Error(`${conn.client} exited with ${result.exitCode}: ${result.stderr.trim() || result.stdout.trim()}`);
  return result.stdout
    .split("\n")
    .filter((line) => line.length > 0)
    .map((line) => line.split("\t"));
}

async function checkServer(conn: Connection): Promise<Server> {
  let rows: string[][];
  try {
    rows = await sql(conn, "SELECT VERSION()", 60_000);
  } catch (error) {
    const message = (error as Error).message;
    const detail = message.split("\n").find((line) => line.includes("ERROR")) ?? message;
    if (/ERROR 1045|Access denied/i.test(message)) {
      throw new Error(`wrong password for ${conn.user} (${conn.passwordFrom ? `from ${conn.passwordFrom}` : "no password found in the container's environment"}): ${detail.trim()}`);
    }
    if (/ERROR 20(02|03|13)|Can't connect|Lost connection/i.test(message)) {
      throw new Error(`the database server is not ready: it does not accept connections (${detail.trim()}); is it running or still starting?`);
    }
    throw error;
  }
  const version = rows[0]?.[0] ?? "unknown";
  return { version, isMariadb: /mariadb/i.test(version) };
}

async function open(phase: string, service: ServiceInfo, options: MariadbOptions): Promise<{ conn: Connection; server: Server }> {
  try {
    const conn = await connect(service, options);
    return { conn, server: await checkServer(conn) };
  } catch (error) {
    throw asStepError(engine, phase, service.name, error);
  }
}

async function listDatabases(conn: Connection): Promise<string[]> {
  const rows = await sql(conn, `SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME NOT IN (${systemSchemas.map(quoteString).join(", ")}) ORDER BY SCHEMA_NAME`);
  return rows.map((row) => row[0]);
}

async function liveFacts(conn: Connection, database: string): Promise<TableFacts> {
  const tables = (await sql(conn, `SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ${quoteString(database)} AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME`)).map((row) => row[0]);
  const counted = tables.slice(0, maxCountedTables);
  const counts: Record<string, number> = {};
  if (counted.length) {
    const query = counted.map((table, index) => `SELECT ${index}, COUNT(*) FROM ${quoteName(database)}.${quoteName(table)}`).join(" UNION ALL ");
    for (const [index, count] of await sql(conn, query, 600_000)) counts[counted[Number(index)]] = Number(count);
  }
  return tableFacts(counts, tables.length);
}

// ---------------------------------------------------------------------------------------------
// Capture

/** CREATE USER IF NOT EXISTS + GRANT statements for every account but root and the system ones. */
async function accountsSql(conn: Connection, server: Server): Promise<{ text: string; accounts: number }> {
  const excluded = [...systemAccounts, conn.user].map(quoteString).join(", ");
  const accounts = (await sql(conn, `SELECT CONCAT(QUOTE(User), '@', QUOTE(Host)) FROM mysql.user WHERE User <> '' AND Host <> '' AND User NOT IN (${excluded}) ORDER BY User, Host`)).map((row) => row[0]);
  if (!accounts.length) return { text: "", accounts: 0 };
  // MySQL 8 prints binary password hashes unless asked for hex.
  const prefix = server.isMariadb ? "" : "SET SESSION print_identified_with_as_hex = ON; ";
  const statements = await sql(conn, prefix + accounts.map((account) => `SHOW CREATE USER ${account}; SHOW GRANTS FOR ${account};`).join(" "));
  const lines = statements.map((row) => row.join("\t").replace(/^CREATE USER (?!IF NOT EXISTS)/, "CREATE USER IF NOT EXISTS ") + ";");
  return { text: `-- accounts and grants, written by composure (root and system accounts are not included)\n${lines.join("\n")}\nFLUSH PRIVILEGES;\n`, accounts: accounts.length };
}

async function dumpDatabase(conn: Connection, database: string, store: ArtifactStore, name: string): Promise<StoredArtifact> {
  if (database.startsWith("-")) throw new Error(`cannot dump database ${database}: its name starts with "-"`);
  const argv = [conn.dump, "-u", conn.user, "--single-transaction", "--skip-lock-tables", "--routines", "--events", "--triggers", "--hex-blob", "--default-character-set=utf8mb4", "--databases", database];
  return dumpToStore(store, name, conn.container.id, argv, { env: conn.env, label: `${conn.service}: ${conn.dump} ${database}` });
}

async function captureAll(conn: Connection, server: Server, databases: string[], store: ArtifactStore, withAccounts: boolean): Promise<Artifact[]> {
  const artifacts: Artifact[] = [];
  if (withAccounts) {
    const { text, accounts } = await accountsSql(conn, server);
    if (accounts > 0) {
      const stored = await store.putStream("users.sql", Readable.from([Buffer.from(text)]));
      artifacts.push({ ...stored, facts: { kind: "users", engine: "mariadb", accounts, serverVersion: server.version } });
    }
  }
  const used = new Set<string>();
  for (const database of databases) {
    const base = uniqueArtifactBaseName(database, used, ["users"]);
    const started = performance.now();
    const before = await liveFacts(conn, database);
    const stored = await dumpDatabase(conn, database, store, `${base}.sql`);
    // The dump's snapshot is its own transaction: counted again after it, a table written to meanwhile gets bounds.
    const facts = boundTableFacts(before, await liveFacts(conn, database));
    log.info(`${conn.service}: database ${database}: ${facts.tables} tables, ${formatCount(facts.rows)} rows dumped in ${formatSeconds((performance.now() - started) / 1000)}`);
    artifacts.push({ ...stored, facts: { kind: "database", engine: "mariadb", database, serverVersion: server.version, tool: conn.dump, snapshot: false, ...facts } });
  }
  return artifacts;
}

// ---------------------------------------------------------------------------------------------
// Restore

async function restoreAccounts(ctx: RestoreContext<unknown>, conn: Connection, artifact: Artifact): Promise<string> {
  const text = await ctx.reader.readText(artifact);
  const result = await runTool(conn.container, clientArgs(conn), { env: conn.env, stdin: Buffer.from(text), timeoutMs: 600_000 });
  if (result.exitCode !== 0) throw new Error(`restoring accounts from ${artifact.path} failed: ${result.stderr.trim() || `${conn.client} exited with ${result.exitCode}`}`);
  return `restored ${artifact.facts?.accounts ?? "the"} accounts and their grants from ${artifact.path} (missing ones created)`;
}

async function restoreDatabase(ctx: RestoreContext<unknown>, conn: Connection, artifact: Artifact): Promise<string> {
  const database = artifact.facts!.database as string;
  const started = performance.now();
  // Sessions using the database would hold metadata locks that block the DROP: end them.
  const sessions = await sql(conn, `SELECT ID FROM information_schema.PROCESSLIST WHERE DB = ${quoteString(database)} AND ID <> CONNECTION_ID()`);
  for (const [id] of sessions) await sql(conn, `KILL CONNECTION ${Number(id)}`).catch(() => undefined);
  await sql(conn, `DROP DATABASE IF EXISTS ${quoteName(database)}`, 600_000);
  await loadFromStore(ctx.reader.read(artifact), conn.container.id, [...clientArgs(conn), "--max-allowed-packet=1073741824"], { env: conn.env, label: `${conn.service}: load ${database}` });
  const seconds = (performance.now() - started) / 1000;
  const live = await liveFacts(conn, database);
  const differences = compareTableFacts(database, artifact.facts as Partial<TableFacts>, live);
  const summary = `restored database ${database} from ${artifact.path} in ${formatSeconds(seconds)}${sessions.length ? ` (ended ${sessions.length} session(s))` : ""}: ${live.tables} tables, ${formatCount(live.rows)} rows`;
  if (differences.length) {
    // Counts are taken just before the dump's snapshot: writes in between show up here.
    log.warn(`${ctx.serviceName}: database ${database} differs from the counts recorded just before the dump: ${differences.slice(0, 5).join("; ")}`);
    return `${summary} (differs from the recorded counts: ${differences.length} table(s))`;
  }
  return `${summary}, as recorded at backup time`;
}

// ---------------------------------------------------------------------------------------------

export const mariadbStrategy = dumpStrategy<MariadbOptions, Connection, Server>({
  engine,
  options: mariadbOptions,
  detect: (service) => isMariadbImage(service.image),
  open,
  listDatabases: (conn) => listDatabases(conn),
  capture: captureAll,
  dropping: "ending its sessions",
  describeAccounts: (artifact) => `would restore ${artifact.facts?.accounts ?? ""} accounts and grants from ${artifact.path} (create missing accounts, apply the grants)`,
  describeDatabase(artifact, replaces) {
    const facts = artifact.facts as Partial<TableFacts>;
    return `would restore database ${artifact.facts!.database} from ${artifact.path}: ${replaces} load ${facts.tables ?? "?"} tables, ${formatCount(facts.rows ?? 0)} rows`;
  },
  restoreAccounts: (ctx, conn, _server, artifact) => restoreAccounts(ctx, conn, artifact),
  restoreDatabase: (ctx, conn, _server, artifact) => restoreDatabase(ctx, conn, artifact),
  liveFacts,
});

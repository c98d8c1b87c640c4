// Pure CQL text handling for the cassandra strategy (unit-tested, no Docker): splitting the output
// of `DESCRIBE KEYSPACE ... WITH INTERNALS` into statements, telling what each one creates, and
// turning the saved schema into the statements that recreate what is missing on a restore.

/** Keyspaces of Cassandra itself: never backed up unless named explicitly in `keyspaces`. */
export const systemKeyspaces = [
  "system",
  "system_schema",
  "system_auth",
  "system_distributed",
  "system_traces",
  "system_views",
  "system_virtual_schema",
  "system_cluster_metadata",
];

/**
 * Splits CQL text into statements (without their final `;`). Semicolons inside string literals,
 * quoted identifiers, $$-bodies and comments do not split; comments are dropped.
 */
export function splitStatements(text: string): string[] {
  const statements: string[] = [];
  let current = "";
  let index = 0;
  const flush = () => {
    const statement = current.trim();
    if (statement) statements.push(statement);
    current = "";
  };
  while (index < text.length) {
    const char = text[index];
    const next = text[index + 1];
    if (char === "'" || char === '"') {
      // 'it''s' and "a""b": a doubled quote stays inside.
      let end = index + 1;
      for (;;) {
        end = text.indexOf(char, end);
        if (end === -1) {
          end = text.length;
          break;
        }
        if (text[end + 1] === char) {
          end += 2;
          continue;
        }
        end += 1;
        break;
      }
      current += text.slice(index, end);
      index = end;
    } else if (char === "$" && next === "$") {
      const end = text.indexOf("$$", index + 2);
      const stop = end === -1 ? text.length : end + 2;
      current += text.slice(index, stop);
      index = stop;
    } else if ((char === "-" && next === "-") || (char === "/" && next === "/")) {
      const end = text.indexOf("\n", index);
      index = end === -1 ? text.length : end;
    } else if (char === "/" && next === "*") {
      const end = text.indexOf("*/", index + 2);
      index = end === -1 ? text.length : end + 2;
    } else if (char === ";") {
      flush();
      index += 1;
    } else {
      current += char;
      index += 1;
    }
  }
  flush();
  return statements;
}

/** A CQL identifier as written: "Quoted" (case kept, "" unescaped) or bare (case-insensitive). */
const identifier = `(?:"(?:[^"]|"")+"|[A-Za-z0-9_]+)`;
const qualified = `(${identifier})\\s*\\.\\s*(${identifier})`;

export function unquoteIdentifier(token: string): string {
  return token.startsWith('"') ? token.slice(1, -1).replace(/""/g, '"') : token.toLowerCase();
}

/** Always quoted: correct for every name, reserved words (e.g. `entries`) included. */
export function quoteIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

export const tableKey = (keyspace: string, table: string) => `${keyspace}.${table}`;

export interface SchemaStatement {
  kind: "keyspace" | "type" | "table" | "drop-column" | "index" | "view" | "function" | "aggregate" | "other";
  text: string;
  keyspace?: string;
  /** The object's own name (table, view, type, index ...). */
  name?: string;
  /** For indexes and views: the table they belong to; for tables and dropped columns: the table itself. */
  table?: string;
}

/** Tells what one statement of a DESCRIBE output creates. */
export function classifyStatement(text: string): SchemaStatement {
  const flat = text.replace(/\s+/g, " ").trim();
  const ifNotExists = "(?:IF NOT EXISTS )?";
  let match = new RegExp(`^CREATE KEYSPACE ${ifNotExists}(${identifier})`, "i").exec(flat);
  if (match) return { kind: "keyspace", text, keyspace: unquoteIdentifier(match[1]), name: unquoteIdentifier(match[1]) };
  match = new RegExp(`^CREATE TABLE ${ifNotExists}${qualified}`, "i").exec(flat);
  if (match) {
    const table = unquoteIdentifier(match[2]);
    return { kind: "table", text, keyspace: unquoteIdentifier(match[1]), name: table, table };
  }
  match = new RegExp(`^ALTER TABLE ${qualified} DROP `, "i").exec(flat);
  if (match) {
    const table = unquoteIdentifier(match[2]);
    return { kind: "drop-column", text, keyspace: unquoteIdentifier(match[1]), name: table, table };
  }
  match = new RegExp(`^CREATE (?:CUSTOM )?INDEX ${ifNotExists}(?:(${identifier}) )?ON ${qualified}`, "i").exec(flat);
  if (match) return { kind: "index", text, keyspace: unquoteIdentifier(match[2]), name: match[1] ? unquoteIdentifier(match[1]) : undefined, table: unquoteIdentifier(match[3]) };
  match = new RegExp(`^CREATE MATERIALIZED VIEW ${ifNotExists}${qualified} AS SELECT .*? FROM ${qualified}`, "i").exec(flat);
  if (match) return { kind: "view", text, keyspace: unquoteIdentifier(match[1]), name: unquoteIdentifier(match[2]), table: unquoteIdentifier(match[4]) };
  match = new RegExp(`^CREATE (TYPE|FUNCTION|AGGREGATE|OR REPLACE FUNCTION|OR REPLACE AGGREGATE) ${ifNotExists}${qualified}`, "i").exec(flat);
  if (match) {
    const kind = match[1].toUpperCase().endsWith("TYPE") ? "type" : match[1].toUpperCase().endsWith("FUNCTION") ? "function" : "aggregate";
    return { kind, text, keyspace: unquoteIdentifier(match[2]), name: unquoteIdentifier(match[3]) };
  }
  return { kind: "other", text };
}

/** `CREATE X` -> `CREATE X IF NOT EXISTS`, and without the backup's table id (WITH ID = ...). */
export function idempotentCreate(text: string): string {
  let statement = text
    .replace(/\bWITH\s+ID\s*=\s*[0-9a-fA-F-]{36}\s+AND\s+/, "WITH ")
    .replace(/\s+WITH\s+ID\s*=\s*[0-9a-fA-F-]{36}\s*$/, "");
  statement = statement.replace(/^(\s*CREATE\s+(?:KEYSPACE|TABLE|TYPE|FUNCTION|AGGREGATE|(?:CUSTOM\s+)?INDEX|MATERIALIZED\s+VIEW))\s+(?!IF\s+NOT\s+EXISTS\b)/i, "$1 IF NOT EXISTS ");
  return statement;
}

export interface ExistingSchema {
  keyspaces: Set<string>;
  /** tableKey(keyspace, table), views included. */
  tables: Set<string>;
}

export interface SchemaPlan {
  /** Statements to run, in order, each ending with `;`. */
  statements: string[];
  createdKeyspaces: string[];
  /** tableKey of each table created by the plan (absent before the restore). */
  createdTables: string[];
}

/**
 * What to run so that the selected tables exist as in the backup: missing keyspaces, types,
 * functions and tables are created (with the backup's replication and options, new table ids),
 * with the columns the backup had dropped (so that its SSTables load) and with their indexes and
 * views. Objects that exist are left as they are.
 */
export function planSchema(schemaText: string, existing: ExistingSchema, selected: Set<string>): SchemaPlan {
  const plan: SchemaPlan = { statements: [], createdKeyspaces: [], createdTables: [] };
  const keyspaces = new Set([...selected].map((key) => key.slice(0, key.indexOf("."))));
  const created = new Set<string>();
  for (const statement of splitStatements(schemaText).map(classifyStatement)) {
    const keyspace = statement.keyspace;
    if (!keyspace || !keyspaces.has(keyspace)) continue;
    const key = statement.table ? tableKey(keyspace, statement.table) : undefined;
    switch (statement.kind) {
      case "keyspace":
        if (!existing.keyspaces.has(keyspace)) {
          plan.createdKeyspaces.push(keyspace);
          plan.statements.push(`${idempotentCreate(statement.text)};`);
        }
        break;
      case "type":
      case "function":
      case "aggregate":
        plan.statements.push(`${idempotentCreate(statement.text)};`);
        break;
      case "table":
        if (selected.has(key!) && !existing.tables.has(key!)) {
          created.add(key!);
          plan.createdTables.push(key!);
          plan.statements.push(`${idempotentCreate(statement.text)};`);
        }
        break;
      case "drop-column":
        if (created.has(key!)) plan.statements.push(`${statement.text};`);
        break;
      case "index":
      case "view":
        if (created.has(key!)) plan.statements.push(`${idempotentCreate(statement.text)};`);
        break;
      default:
        break;
    }
  }
  return plan;
}

/** Tables (tableKey) and views a schema text creates, by keyspace. */
export function tablesInSchema(schemaText: string): { tables: string[]; views: string[] } {
  const tables: string[] = [];
  const views: string[] = [];
  for (const statement of splitStatements(schemaText).map(classifyStatement)) {
    if (statement.kind === "table") tables.push(tableKey(statement.keyspace!, statement.name!));
    if (statement.kind === "view") views.push(tableKey(statement.keyspace!, statement.name!));
  }
  return { tables, views };
}

/** `shop*` style patterns (only `*` is special) against a name, case-sensitive like keyspaces. */
export function matchesPattern(pattern: string, name: string): boolean {
  const expression = pattern.split("*").map((part) => part.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(".*");
  return new RegExp(`^${expression}$`).test(name);
}

export interface KeyspaceChoice {
  keyspaces: string[];
  problems: string[];
}

/**
 * The keyspaces to back up: `include` patterns (default: every keyspace but Cassandra's own),
 * minus `exclude` patterns. Each include pattern that matches nothing is a problem, and so is an
 * empty result: a filter that selects nothing must not produce an empty "successful" backup.
 */
export function chooseKeyspaces(existing: string[], include: string[] | undefined, exclude: string[] | undefined): KeyspaceChoice {
  const problems: string[] = [];
  const sorted = [...existing].sort();
  let chosen: string[];
  if (include) {
    chosen = [];
    for (const pattern of include) {
      const matched = sorted.filter((name) => matchesPattern(pattern, name));
      if (matched.length === 0) problems.push(`keyspace filter ${JSON.stringify(pattern)} (composure.cassandra.keyspaces) matches no keyspace`);
      chosen.push(...matched.filter((name) => !chosen.includes(name)));
    }
  } else {
    chosen = sorted.filter((name) => !systemKeyspaces.includes(name));
  }
  const kept = chosen.filter((name) => !(exclude ?? []).some((pattern) => matchesPattern(pattern, name)));
  if (problems.length === 0 && kept.length === 0) {
    problems.push(chosen.length ? `composure.cassandra.exclude_keyspaces leaves no keyspace to back up (of ${chosen.join(", ")})` : "the cluster has no keyspace of its own to back up (only system keyspaces)");
  }
  const userKeyspaces = sorted.filter((name) => !systemKeyspaces.includes(name));
  if (problems.length) problems.push(`keyspaces in the cluster: ${userKeyspaces.join(", ") || "none but system keyspaces"}`);
  return { keyspaces: kept, problems };
}

/** Lines of cqlsh output that are JSON objects (the rows of a SELECT JSON). */
export function jsonRows(output: string): Record<string, unknown>[] {
  const rows: Record<string, unknown>[] = [];
  for (const line of output.split("\n")) {
    const trimmed = line.trim();
    if (!trimmed.startsWith("{") || !trimmed.endsWith("}")) continue;
    try {
      rows.push(JSON.parse(trimmed) as Record<string, unknown>);
    } catch {
      // not a row (a DESCRIBE map literal, say)
    }
  }
  return rows;
}

/**
 * The parts of a snapshot directory path `<data dir>/<ks>/<table>-<32 hex id>/snapshots/<tag>`,
 * or undefined for anything else (index subdirectories, other tags).
 */
export function parseSnapshotDir(dir: string, tag: string): { dataDir: string; keyspace: string; table: string; tableDir: string } | undefined {
  const parts = dir.split("/");
  if (parts.length < 5 || parts.at(-1) !== tag || parts.at(-2) !== "snapshots") return undefined;
  const tableDir = parts.at(-3)!;
  const match = /^(.+)-([0-9a-f]{32})$/.exec(tableDir);
  if (!match) return undefined;
  return { dataDir: parts.slice(0, -4).join("/"), keyspace: parts.at(-4)!, table: match[1], tableDir };
}

// Fact trends: a service's facts in this run against those of its previous good run. A run
// that succeeds on data that was already damaged (a DROP TABLE, rows deleted by a bug, a volume
// emptied) is still a good copy of what was there, so the backup succeeds; but the record is
// marked suspect, and retention keeps the run from before it (see retention.ts).
//
// Pure functions over recorded manifests. They read the facts strategies record, by their shape:
//   database dumps, sqlite   `kind: "database" | "sqlite"`, `database`, `counts` (table -> rows)
//   Cassandra                `kind: "schema"`, `keyspaces`, `tableNames`, `counts` (exact, small tables)
//   Elasticsearch/OpenSearch `kind: "snapshot-repository"`, `documents` (index -> documents)
//   Redis                    `kind: "redis-rdb"`, `keyspace` (db0 -> { keys })
//   Prometheus, VictoriaM.   `kind: "tsdb-snapshot"`, `drill.series`
//   volumes (tree facts)     `kind: "tree"`, `files`, `bytes`, with the artifact's `volume`
import { formatCount } from "../log.ts";
import type { Artifact, Loss, ServiceRecord } from "./manifest.ts";

/** Share a count may fall by before the record is suspect, when a service does not set its own. */
export const defaultShrinkAlert = 0.5;

/** A thing that holds data (a table, an index ...): its disappearance is a loss whatever its size. */
interface Holder {
  what: string;
  kind: string;
}

/** A count or byte total recorded at backup time. */
interface Total {
  what: string;
  unit: string;
  count: number;
}

interface FactSummary {
  holders: Holder[];
  totals: Total[];
}

export interface Trend {
  /** The run compared with. */
  baseline: string;
  /** The largest share by which any count fell (1: something disappeared), 0 when none fell. */
  largestDrop: number;
  /** What fell by more than the threshold, or disappeared; empty when nothing did. */
  losses: Loss[];
}

type Facts = Record<string, unknown>;

const isRecordOf = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value);
const numbersOf = (value: unknown): [string, number][] => (isRecordOf(value) ? Object.entries(value).filter((entry): entry is [string, number] => typeof entry[1] === "number") : []);
const stringsOf = (value: unknown): string[] => (Array.isArray(value) ? value.filter((item): item is string => typeof item === "string") : []);

/** Tables with their row counts (database dumps, sqlite): the database holds the tables. */
function tablesOf(facts: Facts, summary: FactSummary): void {
  if (typeof facts.database !== "string") return;
  summary.holders.push({ what: facts.database, kind: "database" });
  // Beyond the counted tables (complete: false) a table may leave the counted set without being gone.
  const conclusive = facts.complete !== false;
  for (const [table, rows] of numbersOf(facts.counts)) {
    const what = `${facts.database}.${table}`;
    if (conclusive) summary.holders.push({ what, kind: "table" });
    summary.totals.push({ what, unit: "rows", count: rows });
  }
}

const readers: Record<string, (facts: Facts, summary: FactSummary, artifact: Artifact) => void> = {
  database: tablesOf,
  sqlite: tablesOf,
  schema(facts, summary) {
    for (const keyspace of stringsOf(facts.keyspaces)) summary.holders.push({ what: keyspace, kind: "keyspace" });
    for (const table of stringsOf(facts.tableNames)) summary.holders.push({ what: table, kind: "table" });
    for (const [table, rows] of numbersOf(facts.counts)) summary.totals.push({ what: table, unit: "rows", count: rows });
  },
  "snapshot-repository"(facts, summary) {
    for (const [index, documents] of numbersOf(facts.documents)) {
      summary.holders.push({ what: index, kind: "index" });
      summary.totals.push({ what: index, unit: "documents", count: documents });
    }
  },
  "redis-rdb"(facts, summary) {
    for (const [db, entry] of Object.entries(isRecordOf(facts.keyspace) ? facts.keyspace : {})) {
      if (!isRecordOf(entry) || typeof entry.keys !== "number") continue;
      summary.holders.push({ what: db, kind: "Redis database" });
      summary.totals.push({ what: db, unit: "keys", count: entry.keys });
    }
  },
  "tsdb-snapshot"(facts, summary) {
    const series = isRecordOf(facts.drill) ? facts.drill.series : undefined;
    if (typeof series === "number") summary.totals.push({ what: String(facts.product ?? "database"), unit: "series", count: series });
  },
  tree(facts, summary, artifact) {
    const what = `volume ${artifact.volume?.composeName ?? artifact.volume?.name ?? artifact.path}`;
    for (const unit of ["files", "bytes"] as const) {
      if (typeof facts[unit] === "number") summary.totals.push({ what, unit, count: facts[unit] });
    }
  },
};

/** What a service's record says about its data: the things that hold it and their counts. */
export function summarizeFacts(record: ServiceRecord): FactSummary {
  const summary: FactSummary = { holders: [], totals: [] };
  for (const artifact of record.artifacts) {
    const facts = artifact.facts;
    const read = typeof facts?.kind === "string" ? readers[facts.kind] : undefined;
    if (facts && read) read(facts, summary, artifact);
  }
  return summary;
}

/**
 * A record whose artifacts another service captured (a cluster member) holds no facts of its own:
 * comparing it would read as everything gone.
 */
function capturedElsewhere(record: ServiceRecord): boolean {
  const capturer = record.facts?.capturedWith;
  return typeof capturer === "string" && capturer !== record.name;
}

/**
 * Compares a service's record with the same service's record in its previous good run.
 * `shrinkAlert`: the share a count may fall by (0.5: more than half gone is a loss); false
 * compares nothing. Undefined when there is nothing to compare.
 */
export function compareFacts(baseline: { runId: string; record: ServiceRecord }, current: ServiceRecord, shrinkAlert: number | false): Trend | undefined {
  if (shrinkAlert === false || capturedElsewhere(current) || capturedElsewhere(baseline.record)) return undefined;
  const before = summarizeFacts(baseline.record);
  if (before.holders.length === 0 && before.totals.length === 0) return undefined;
  const after = summarizeFacts(current);
  const trend: Trend = { baseline: baseline.runId, largestDrop: 0, losses: [] };
  const present = new Set(after.holders.map((holder) => holder.what));
  const gone = before.holders.filter((holder) => !present.has(holder.what));
  const goneNames = new Set(gone.map((holder) => holder.what));
  const countBefore = (what: string, unit?: string) => before.totals.find((total) => total.what === what && (!unit || total.unit === unit));
  for (const holder of gone) {
    trend.largestDrop = 1;
    // A database that is gone took its tables with it: name the database alone.
    if ([...goneNames].some((name) => holder.what.startsWith(`${name}.`))) continue;
    const was = countBefore(holder.what);
    trend.losses.push({ what: holder.what, kind: holder.kind, ...(was ? { unit: was.unit, was: was.count } : {}) });
  }
  for (const total of after.totals) {
    const was = countBefore(total.what, total.unit);
    if (!was || was.count <= 0 || total.count >= was.count) continue;
    const drop = (was.count - total.count) / was.count;
    trend.largestDrop = Math.max(trend.largestDrop, drop);
    if (drop > shrinkAlert) trend.losses.push({ what: total.what, unit: total.unit, was: was.count, now: total.count });
  }
  trend.largestDrop = Math.round(trend.largestDrop * 10_000) / 10_000;
  return trend;
}

/** One loss as people read it: "shop.orders: 230,114 -> 12 rows", "table shop.items is gone (was 40 rows)". */
export function describeLoss(loss: Loss): string {
  const unit = loss.unit ? ` ${loss.unit}` : "";
  if (loss.now !== undefined) return `${loss.what}: ${formatCount(loss.was ?? 0)} -> ${formatCount(loss.now)}${unit}`;
  const was = loss.was !== undefined ? ` (was ${formatCount(loss.was)}${unit})` : "";
  return `${loss.kind ?? "it"} ${loss.what} is gone${was}`;
}

/** The backup was marked suspect when it was taken (whether an operator accepted it is kept beside the run). */
export function isSuspect(record: ServiceRecord): boolean {
  return (record.suspect?.length ?? 0) > 0;
}

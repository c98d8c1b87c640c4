import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { compareFacts, describeLoss, summarizeFacts } from "../../scripts/lib/catalog/fact-trends.ts";
import type { Artifact, ServiceRecord } from "../../scripts/lib/catalog/manifest.ts";
import { parseConfig, resolveServiceSettings } from "../../scripts/lib/config/load.ts";

const sha256 = "0".repeat(64);

function record(name: string, facts: Record<string, unknown>[], extra: Partial<ServiceRecord> = {}): ServiceRecord {
  const artifacts: Artifact[] = facts.map((entry, index) => ({ path: `${name}/${index}`, bytes: 1, sha256, compression: "zstd", facts: entry }));
  return { name, strategy: "x", status: "ok", stopped: [], downtimeSeconds: 0, durationSeconds: 0, artifacts, ...extra };
}

const database = (name: string, counts: Record<string, number>, complete = true) => ({ kind: "database", engine: "postgres", database: name, counts, tables: Object.keys(counts).length, complete });
const tree = (files: number, bytes: number) => ({ kind: "tree", entries: files + 1, files, bytes, listing: "a".repeat(64), sample: "b".repeat(64) });
const volumeRecord = (files: number, bytes: number) => {
  const entry = record("files", [tree(files, bytes)]);
  entry.artifacts[0].volume = { name: "shop_data", kind: "volume", composeName: "data" };
  return entry;
};
const compare = (before: ServiceRecord, after: ServiceRecord, share: number | false = 0.5) => compareFacts({ runId: "20260101T000000Z", record: before }, after, share);

describe("fact trends", () => {
  test("a table that lost 90% of its rows is a loss naming the table and both counts", () => {
    const trend = compare(record("db", [database("shop", { "public.orders": 230_114, "public.items": 40 })]), record("db", [database("shop", { "public.orders": 12, "public.items": 40 })]));
    assert.ok(trend);
    assert.equal(trend.baseline, "20260101T000000Z");
    assert.deepEqual(trend.losses, [{ what: "shop.public.orders", unit: "rows", was: 230_114, now: 12 }]);
    assert.equal(describeLoss(trend.losses[0]), "shop.public.orders: 230,114 -> 12 rows");
    assert.equal(trend.largestDrop, 0.9999);
  });

  test("a fall within the share is recorded as the largest drop, not as a loss", () => {
    const trend = compare(record("db", [database("shop", { "public.orders": 100 })]), record("db", [database("shop", { "public.orders": 60 })]));
    assert.deepEqual(trend, { baseline: "20260101T000000Z", largestDrop: 0.4, losses: [] });
  });

  test("exactly the share is not more than the share; growth is no drop", () => {
    assert.deepEqual(compare(record("db", [database("shop", { t: 100 })]), record("db", [database("shop", { t: 50 })]))?.losses, []);
    assert.equal(compare(record("db", [database("shop", { t: 100 })]), record("db", [database("shop", { t: 500 })]))?.largestDrop, 0);
  });

  test("a service's own share applies; false compares nothing", () => {
    const before = record("db", [database("shop", { t: 100 })]);
    const after = record("db", [database("shop", { t: 75 })]);
    assert.equal(compare(before, after, 0.2)?.losses.length, 1);
    assert.equal(compare(before, after, false), undefined);
  });

  test("a dropped table is gone; a dropped database is named alone, not each of its tables", () => {
    const before = record("db", [database("shop", { orders: 10, items: 3 }), database("crm", { people: 5 })]);
    const dropped = compare(before, record("db", [database("shop", { items: 3 }), database("crm", { people: 5 })]));
    assert.deepEqual(dropped?.losses, [{ what: "shop.orders", kind: "table", unit: "rows", was: 10 }]);
    assert.equal(describeLoss(dropped!.losses[0]), "table shop.orders is gone (was 10 rows)");
    assert.equal(dropped?.largestDrop, 1);
    const gone = compare(before, record("db", [database("shop", { orders: 10, items: 3 })]));
    assert.deepEqual(gone?.losses, [{ what: "crm", kind: "database" }]);
    assert.equal(describeLoss(gone!.losses[0]), "database crm is gone");
  });

  test("beyond the counted tables a table leaving the counted set is not called gone", () => {
    const trend = compare(record("db", [database("shop", { a: 1, b: 1 }, false)]), record("db", [database("shop", { a: 1 }, false)]));
    assert.deepEqual(trend?.losses, []);
  });

  test("a volume overwritten with random bytes of the same size is not flagged; one that lost 80% of its files is", () => {
    assert.deepEqual(compare(volumeRecord(1000, 5_000_000), volumeRecord(1000, 5_000_000))?.losses, []);
    const trend = compare(volumeRecord(1000, 5_000_000), volumeRecord(200, 1_000_000));
    assert.deepEqual(trend?.losses.map(describeLoss), ["volume data: 1,000 -> 200 files", "volume data: 5,000,000 -> 1,000,000 bytes"]);
  });

  test("indices, Redis databases, keyspaces and series are compared too", () => {
    const search = (documents: Record<string, number>) => record("search", [{ kind: "snapshot-repository", documents }]);
    assert.deepEqual(compare(search({ logs: 10, users: 4 }), search({ users: 1 }))?.losses.map(describeLoss), ["index logs is gone (was 10 documents)", "users: 4 -> 1 documents"]);
    const redis = (keyspace: Record<string, { keys: number; expires: number }>) => record("cache", [{ kind: "redis-rdb", keyspace }]);
    assert.deepEqual(compare(redis({ db0: { keys: 9, expires: 0 }, db1: { keys: 2, expires: 0 } }), redis({ db0: { keys: 9, expires: 0 } }))?.losses.map(describeLoss), ["Redis database db1 is gone (was 2 keys)"]);
    const cassandra = (keyspaces: string[], tableNames: string[], counts: Record<string, number>) => record("ring", [{ kind: "schema", engine: "cassandra", keyspaces, tableNames, counts }]);
    assert.deepEqual(compare(cassandra(["shop", "logs"], ["shop.orders", "logs.lines"], { "shop.orders": 10 }), cassandra(["shop"], ["shop.orders"], { "shop.orders": 1 }))?.losses.map(describeLoss), ["keyspace logs is gone", "shop.orders: 10 -> 1 rows"]);
    const tsdb = (series: number) => record("metrics", [{ kind: "tsdb-snapshot", product: "prometheus", drill: { series } }]);
    assert.deepEqual(compare(tsdb(1000), tsdb(10))?.losses.map(describeLoss), ["prometheus: 1,000 -> 10 series"]);
  });

  test("nothing to compare: no facts before, or a cluster member captured by another service", () => {
    assert.equal(compare(record("app", []), record("app", [])), undefined);
    const member = record("es2", [], { facts: { capturedWith: "es1" } });
    assert.equal(compare(record("es2", [{ kind: "snapshot-repository", documents: { logs: 10 } }]), member), undefined);
  });

  test("unknown or malformed facts are ignored, never thrown on", () => {
    assert.deepEqual(summarizeFacts(record("x", [{ kind: "database", database: 3 }, { kind: "redis-rdb", keyspace: { db0: "x" } }, { kind: "nope" }])), { holders: [], totals: [] });
  });

  test("shrink_alert: a share, a percentage or false, in composure.yml and as a label", () => {
    const config = parseConfig({ services: { db: { shrink_alert: "20%" }, cache: { shrink_alert: false } } }, ["volume"]);
    assert.equal(config.services.db.shrink_alert, 0.2);
    assert.equal(config.services.cache.shrink_alert, false);
    const fromLabel = (value: string) => resolveServiceSettings(parseConfig({}, ["volume"]), { name: "db", labels: { "composure.shrink_alert": value } }, ["volume"]);
    assert.equal(fromLabel("0.3").settings.shrink_alert, 0.3);
    assert.equal(fromLabel("false").settings.shrink_alert, false);
    assert.match(fromLabel("150%").problems.join("\n"), /between 0 and 1/);
    assert.throws(() => parseConfig({ services: { db: { shrink_alert: "lots" } } }, ["volume"]), /share such as "50%"/);
  });
});

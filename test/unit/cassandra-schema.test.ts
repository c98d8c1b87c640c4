// The cassandra strategy's pure parts: CQL statement splitting, what each DESCRIBE statement
// creates, the schema plan of a restore, the keyspace filter, image detection, and which tables
// get exact counts.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { chooseKeyspaces, classifyStatement, idempotentCreate, jsonRows, parseSnapshotDir, planSchema, splitStatements, tablesInSchema } from "../../scripts/lib/strategies/cassandra/cql.ts";
import { isCassandraImage } from "../../scripts/lib/strategies/cassandra/index.ts";
import { selectTables } from "../../scripts/lib/strategies/cassandra/restore.ts";
import { exactCountBytesLimit, exactCountLimit, smallTables, type ClusterFacts } from "../../scripts/lib/strategies/cassandra/snapshot.ts";
import { clientStatistics, type TableStatistics } from "../../scripts/lib/strategies/cassandra/jmx.ts";

// The shape of `DESCRIBE KEYSPACE shop WITH INTERNALS` from Cassandra 5.0 (options shortened).
const described = `
CREATE KEYSPACE shop WITH replication = {'class': 'SimpleStrategy', 'replication_factor': '2'}  AND durable_writes = true;

CREATE TYPE shop.addr (
    street text,
    n int
);

CREATE TABLE shop."Entries" (
    id int PRIMARY KEY,
    v text,
    extra text
) WITH ID = 361f3250-e612-11f1-878a-3100229209b2
    AND comment = 'semi; colon -- not a comment'
    AND gc_grace_seconds = 864000;
ALTER TABLE shop."Entries" DROP extra USING TIMESTAMP 1795310145440000;

CREATE TABLE shop.orders (
    id int PRIMARY KEY,
    customer text
) WITH ID = 28e0ffb0-e612-11f1-878a-3100229209b2
    AND CLUSTERING ORDER BY (id ASC)
    AND speculative_retry = '99p';

CREATE INDEX orders_customer_idx ON shop.orders (customer);

CREATE MATERIALIZED VIEW shop.by_customer AS
    SELECT * FROM shop.orders WHERE customer IS NOT NULL AND id IS NOT NULL
    PRIMARY KEY (customer, id)
 WITH ID = 9e0ffb0a-e612-11f1-878a-3100229209b2
    AND comment = '';

CREATE KEYSPACE ledger WITH replication = {'class': 'NetworkTopologyStrategy', 'datacenter1': '2'}  AND durable_writes = true;

CREATE TABLE ledger.journal (
    id bigint PRIMARY KEY,
    body text
) WITH ID = 34e308d0-e612-11f1-878a-3100229209b2
    AND comment = '';
`;

describe("cassandra CQL handling", () => {
  test("statements split on semicolons outside strings, quoted names and comments", () => {
    const statements = splitStatements(`${described}\n-- a comment; still a comment\nSELECT 'a;''b' FROM "x;y"; /* c; */`);
    assert.equal(statements.length, 10);
    assert.match(statements[2], /comment = 'semi; colon -- not a comment'/);
    assert.equal(statements.at(-1), `SELECT 'a;''b' FROM "x;y"`);
  });

  test("each DESCRIBE statement says what it creates, quoted names keep their case", () => {
    const kinds = splitStatements(described).map(classifyStatement).map((statement) => [statement.kind, statement.keyspace, statement.name, statement.table]);
    assert.deepEqual(kinds, [
      ["keyspace", "shop", "shop", undefined],
      ["type", "shop", "addr", undefined],
      ["table", "shop", "Entries", "Entries"],
      ["drop-column", "shop", "Entries", "Entries"],
      ["table", "shop", "orders", "orders"],
      ["index", "shop", "orders_customer_idx", "orders"],
      ["view", "shop", "by_customer", "orders"],
      ["keyspace", "ledger", "ledger", undefined],
      ["table", "ledger", "journal", "journal"],
    ]);
    assert.deepEqual(tablesInSchema(described), { tables: ["shop.Entries", "shop.orders", "ledger.journal"], views: ["shop.by_customer"] });
  });

  test("recreated objects get IF NOT EXISTS and a new table id", () => {
    const [, , entries, , orders] = splitStatements(described);
    assert.match(idempotentCreate(entries), /^CREATE TABLE IF NOT EXISTS shop\."Entries" \(/);
    assert.doesNotMatch(idempotentCreate(entries), /\bID\s*=/);
    assert.match(idempotentCreate(entries), /\) WITH comment = 'semi; colon -- not a comment'/);
    assert.match(idempotentCreate(orders), /\) WITH CLUSTERING ORDER BY \(id ASC\)/);
    assert.equal(idempotentCreate("CREATE TABLE IF NOT EXISTS a.b (id int PRIMARY KEY)"), "CREATE TABLE IF NOT EXISTS a.b (id int PRIMARY KEY)");
    assert.equal(idempotentCreate("CREATE INDEX i ON a.b (c)"), "CREATE INDEX IF NOT EXISTS i ON a.b (c)");
  });

  test("the schema plan creates only what is missing among the selected tables, with dropped columns, indexes and views", () => {
    const fresh = planSchema(described, { keyspaces: new Set(), tables: new Set() }, new Set(["shop.Entries", "shop.orders"]));
    assert.deepEqual(fresh.createdKeyspaces, ["shop"]);
    assert.deepEqual(fresh.createdTables, ["shop.Entries", "shop.orders"]);
    assert.equal(fresh.statements.length, 7, fresh.statements.join("\n"));
    assert.match(fresh.statements[3], /^ALTER TABLE shop."Entries" DROP extra USING TIMESTAMP/);
    assert.ok(fresh.statements.every((statement) => statement.endsWith(";")));
    assert.ok(!fresh.statements.some((statement) => /ledger/.test(statement)), "keyspaces not selected are left alone");

    const oneDropped = planSchema(described, { keyspaces: new Set(["shop", "ledger"]), tables: new Set(["shop.Entries", "shop.by_customer", "ledger.journal"]) }, new Set(["shop.Entries", "shop.orders", "ledger.journal"]));
    assert.deepEqual(oneDropped.createdKeyspaces, []);
    assert.deepEqual(oneDropped.createdTables, ["shop.orders"]);
    assert.ok(oneDropped.statements.some((statement) => statement.startsWith("CREATE INDEX IF NOT EXISTS orders_customer_idx")));
    assert.ok(!oneDropped.statements.some((statement) => statement.startsWith("ALTER TABLE")), "columns are dropped only on tables created now");
  });

  test("the keyspace filter: system keyspaces out by default, patterns, and clear problems when nothing matches", () => {
    const existing = ["system", "system_auth", "system_schema", "shop", "ledger", "shop_archive"];
    assert.deepEqual(chooseKeyspaces(existing, undefined, undefined), { keyspaces: ["ledger", "shop", "shop_archive"], problems: [] });
    assert.deepEqual(chooseKeyspaces(existing, ["shop*"], ["*_archive"]).keyspaces, ["shop"]);
    assert.deepEqual(chooseKeyspaces(existing, ["system_auth", "shop"], undefined).keyspaces, ["system_auth", "shop"]);
    const none = chooseKeyspaces(existing, ["nosuch"], undefined);
    assert.deepEqual(none.keyspaces, []);
    assert.match(none.problems.join("; "), /keyspace filter "nosuch" \(composure\.cassandra\.keyspaces\) matches no keyspace; keyspaces in the cluster: ledger, shop, shop_archive/);
    assert.match(chooseKeyspaces(existing, undefined, ["*"]).problems[0], /exclude_keyspaces leaves no keyspace/);
    assert.match(chooseKeyspaces(["system", "system_schema"], undefined, undefined).problems[0], /no keyspace of its own/);
  });

  test("cqlsh SELECT JSON rows are read from its table output", () => {
    const output = `\n [json]\n---------------\n {"c0": 20000}\n    {"keyspace_name": "shop"}\n\n(2 rows)\n`;
    assert.deepEqual(jsonRows(output), [{ c0: 20000 }, { keyspace_name: "shop" }]);
  });

  test("snapshot directories tell their data directory, keyspace and table", () => {
    assert.deepEqual(parseSnapshotDir("/var/lib/cassandra/data/shop/orders-28e0ffb0e61211f1878a3100229209b2/snapshots/composure-1", "composure-1"), {
      dataDir: "/var/lib/cassandra/data",
      keyspace: "shop",
      table: "orders",
      tableDir: "orders-28e0ffb0e61211f1878a3100229209b2",
    });
    assert.equal(parseSnapshotDir("/var/lib/cassandra/data/shop/orders-28e0ffb0e61211f1878a3100229209b2/snapshots/other", "composure-1"), undefined);
    assert.equal(parseSnapshotDir("/data/shop/orders/snapshots/composure-1", "composure-1"), undefined);
  });

  test("VOLUME= selects a keyspace or one table of a cassandra backup", () => {
    const facts = { tableNames: ["ledger.journal", "shop.items", "shop.orders"] } as ClusterFacts;
    assert.deepEqual(selectTables(facts, undefined), facts.tableNames);
    assert.deepEqual(selectTables(facts, "shop"), ["shop.items", "shop.orders"]);
    assert.deepEqual(selectTables(facts, "ledger.journal"), ["ledger.journal"]);
    assert.deepEqual(selectTables(facts, "nosuch"), []);
  });

  test("images named cassandra are detected, with a namespace, registry, tag or digest", () => {
    for (const image of ["cassandra", "cassandra:5.0", "bitnami/cassandra:4.1", "composure-fixture/cassandra:latest", "registry.example:5000/ops/cassandra@sha256:abc"]) {
      assert.ok(isCassandraImage(image), image);
    }
    for (const image of ["cassandra-reaper", "postgres:16", "scylladb/scylla"]) assert.ok(!isCassandraImage(image), image);
  });
});

test("recorded row counts: exact ones must match, a table written to during the snapshot must lie within its bounds", async () => {
  const { countDifferences } = await import("../../scripts/lib/strategies/cassandra/restore.ts");
  const facts = { counts: { "shop.orders": 2000 }, bounds: { "shop.ticks": [140, 190] as [number, number] }, tableNames: ["shop.orders", "shop.ticks", "shop.big"] } as never;
  const tables = ["shop.orders", "shop.ticks", "shop.big"];
  assert.deepEqual(countDifferences(facts, { "shop.orders": 2000, "shop.ticks": 160 }, tables), []);
  assert.deepEqual(countDifferences(facts, { "shop.orders": 2000, "shop.ticks": 190 }, tables), []);
  assert.deepEqual(countDifferences(facts, { "shop.orders": 1999, "shop.ticks": 139 }, tables), [
    "table shop.orders: 1,999 rows, recorded 2,000",
    "table shop.ticks: 139 rows, recorded between 140 and 190 (written to during the snapshot)",
  ]);
  assert.deepEqual(countDifferences(facts, { "shop.orders": 2000 }, tables), ["table shop.ticks: could not be counted (recorded between 140 and 190 rows (written to during the snapshot))"]);
});

test("exact counts only for tables small on every node, by partitions and by live bytes", () => {
  const node = (tables: Record<string, [number, number]>): TableStatistics => ({
    partitions: new Map(Object.entries(tables).map(([key, [partitions]]) => [key, partitions])),
    liveBytes: new Map(Object.entries(tables).map(([key, [, bytes]]) => [key, bytes])),
  });
  const one = node({ "shop.orders": [10, 1024], "shop.events": [1_680, exactCountBytesLimit * 8], "shop.users": [exactCountLimit, 1024], "other.t": [1, 1] });
  const two = node({ "shop.orders": [12, 2048], "shop.events": [1_700, 1024], "shop.users": [5, 1024] });
  // events: few partitions but wide (a count would read all of it); users: many partitions on one node.
  assert.deepEqual(smallTables([one, two], ["shop"]), ["shop.orders"]);
  assert.deepEqual(smallTables([one, node({})], ["shop"]), [], "a node without statistics: nothing is known to be small");
});

test("the JMX client's table figures: one tab-separated line per table, unreadable figures left out", () => {
  const statistics = clientStatistics("shop\torders\t40000\t1048576\nshop\tevents\t\tnot-a-number\n\nsystem\tlocal\t1\t5120\n");
  assert.deepEqual([...statistics.partitions], [["shop.orders", 40000], ["system.local", 1]]);
  assert.deepEqual([...statistics.liveBytes], [["shop.orders", 1048576], ["system.local", 5120]]);
});

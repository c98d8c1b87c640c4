// Acceptance of the postgres strategy on the fixture image: a hot backup under a writer is
// consistent and never stops the server; a restore after damage brings back exactly the dumped
// state; wrong password, a server that is not ready and an image without pg_dump fail clearly and
// alone; no password ever shows in argv, logs, manifest or files; probe returns the facts.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { backupsOf, ComposeProject, composure, docker, fixtureImage, requireDocker, seconds, tempDir, waitFor } from "../support/composure.ts";
import { Writer, filesContaining, watchArgv } from "../support/writers.ts";

const password = `pgpw-${randomBytes(9).toString("hex")}`;
const otherPassword = `pgother-${randomBytes(9).toString("hex")}`;
const image = fixtureImage("postgres");

const project = new ComposeProject(
  `cmpt-sqlpg${process.pid}`,
  `
version: "3.8"
services:
  db:
    image: ${image}
    environment: { POSTGRES_PASSWORD: "${password}", POSTGRES_DB: shop }
    volumes: ["pgdata:/var/lib/postgresql/data"]
  rotated:
    image: ${image}
    environment: { POSTGRES_PASSWORD: "${otherPassword}", POSTGRES_INITDB_ARGS: "--auth-local=scram-sha-256 --auth-host=scram-sha-256" }
  notready:
    image: ${image}
    init: true
    command: ["sleep", "100000"]
  nodump:
    image: $BUSYBOX
    init: true
    command: ["sleep", "100000"]
    labels: { composure.strategy: postgres }
volumes: { pgdata: {} }
`,
);
const destination = tempDir("sql-postgres-dest");
const env = { PROJECT: project.name, DESTINATION: destination };
const secrets = [password, otherPassword];
let db: string;

const psql = (database: string, sql: string) => docker("exec", db, "psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-U", "postgres", "-d", database, "-c", sql);

const dataset: [string, string][] = [
  [
    "shop",
    `CREATE TABLE account_a (id int PRIMARY KEY, total bigint NOT NULL);
     CREATE TABLE account_b (id int PRIMARY KEY, total bigint NOT NULL);
     CREATE TABLE orders (id int PRIMARY KEY, account int NOT NULL, amount numeric(12,2) NOT NULL, note text NOT NULL);
     INSERT INTO account_a SELECT g, 0 FROM generate_series(1, 50000) g;
     INSERT INTO account_b SELECT g, 0 FROM generate_series(1, 50000) g;
     INSERT INTO orders SELECT g, g % 50000 + 1, (g * 7 % 10000) / 100.0, md5(g::text) FROM generate_series(1, 60000) g;
     CREATE ROLE reporter LOGIN;
     ALTER TABLE orders OWNER TO reporter;`,
  ],
  [
    "ledger",
    `CREATE TABLE entries (id bigint PRIMARY KEY, at timestamptz NOT NULL, body text NOT NULL);
     INSERT INTO entries SELECT g, timestamptz '2024-01-01 00:00:00+00' + g * interval '1 minute', repeat(md5(g::text), 2) FROM generate_series(1, 60000) g;
     CREATE TABLE tags (id int PRIMARY KEY, name text NOT NULL);
     INSERT INTO tags SELECT g, 'tag ' || g FROM generate_series(1, 10000) g;`,
  ],
];
const tables: Record<string, string[]> = { shop: ["account_a", "account_b", "orders"], ledger: ["entries", "tags"] };

/** count:md5 of every row in id order, per table: equal strings mean equal content. */
async function checksums(): Promise<Record<string, string>> {
  const sums: Record<string, string> = {};
  for (const [database, names] of Object.entries(tables)) {
    for (const name of names) {
      sums[`${database}.${name}`] = await psql(database, `SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, '|' ORDER BY t.id)), '') FROM ${name} t`).catch((error) => `missing (${(error as Error).message.split("\n")[0]})`);
    }
  }
  return sums;
}

const writerScript = `i=0; while [ ! -e /tmp/stop-writer ]; do i=$((i+1)); k=$((i % 50000 + 1));
  echo "BEGIN; UPDATE account_a SET total = total + 1 WHERE id = $k; UPDATE account_b SET total = total + 1 WHERE id = $k; COMMIT;";
  [ $((i % 25)) -eq 0 ] && sleep 0.05; done | psql -X -q -v ON_ERROR_STOP=1 -U postgres -d shop`;

const { runIds, manifestOf } = backupsOf(path.join(destination, project.name), "plain");

describe("postgres strategy", { timeout: 360_000 }, () => {
  let runUnderLoad: string;
  let quiescentRun: string;
  let quiescentSums: Record<string, string>;

  before(async () => {
    await requireDocker();
    await project.up();
    db = await project.containerId("db");
    const rotated = await project.containerId("rotated");
    // pg_isready over TCP: the first-start set-up server listens on the socket only.
    await waitFor("the postgres services", async () => (await docker("exec", db, "pg_isready", "-h", "127.0.0.1", "-q").then(() => true)) && (await docker("exec", rotated, "pg_isready", "-h", "127.0.0.1", "-q").then(() => true)));
    const started = performance.now();
    await psql("postgres", "CREATE DATABASE ledger");
    for (const [database, sql] of dataset) await psql(database, sql);
    console.log(`# dataset of 230,000 rows loaded in ${seconds(started)} s`);
    // "rotated": the password was changed after initialisation, its POSTGRES_PASSWORD is stale.
    await docker("exec", rotated, "sh", "-c", `PGPASSWORD="$POSTGRES_PASSWORD" psql -q -U postgres -c "ALTER ROLE postgres PASSWORD 'rotated-$RANDOM$RANDOM'"`);
  });
  after(async () => {
    await project.down().catch(() => undefined);
  });

  test("a backup taken while a writer commits is consistent, never stops the server and shows no password anywhere", async () => {
    const startedAt = await project.startedAt("db");
    const writer = new Writer(db, writerScript);
    await waitFor("the writer's first commits", async () => Number(await psql("shop", "SELECT sum(total) FROM account_a")) > 50);
    const sumBefore = Number(await psql("shop", "SELECT sum(total) FROM account_a"));
    // A canary in the argv of a process inside the container proves the watcher sees those.
    const canary = `canary-${randomBytes(6).toString("hex")}`;
    const watcher = watchArgv([...secrets, canary]);
    await docker("exec", db, "sh", "-c", "sleep 0.3", canary);
    const started = performance.now();
    const backup = await composure("backup", { ...env, SERVICE: "db" });
    const took = seconds(started);
    const argv = await watcher.stop();
    assert.ok(argv.hits.some((hit) => hit.startsWith("sh -c sleep 0.3")), "the watcher sees the argv of processes in containers");
    argv.hits = argv.hits.filter((hit) => !hit.includes(canary));
    await writer.stop();
    const sumAfter = Number(await psql("shop", "SELECT sum(total) FROM account_a"));
    assert.equal(backup.code, 0, backup.stderr);
    console.log(`# backup of 230,000 rows under write load: ${took} s; argv of ${argv.processes} processes read in ${argv.scans} scans`);
    assert.ok(sumAfter > sumBefore, "the writer committed during the backup");
    assert.equal(await project.startedAt("db"), startedAt, "the server was never stopped");
    assert.ok(argv.scans > 50, `argv was scanned often enough (${argv.scans} scans)`);
    assert.deepEqual(argv.hits, [], "no process had a password in its argv");
    for (const secret of secrets) {
      assert.ok(!backup.stdout.includes(secret) && !backup.stderr.includes(secret), "no password in the output");
    }
    runUnderLoad = runIds().at(-1)!;
    const runDir = path.join(destination, project.name, runUnderLoad);
    assert.deepEqual(await filesContaining(runDir, secrets), [], "no password in the manifest or any file of the run");
    assert.deepEqual(await filesContaining(path.resolve(import.meta.dirname, "../../exporters/textfile"), secrets), [], "no password in the metrics");
    const record = manifestOf(runUnderLoad).services.find((service: { name: string }) => service.name === "db");
    assert.equal(record.strategy, "postgres", "detected from the image");
    assert.deepEqual(record.stopped, []);
    assert.deepEqual(record.artifacts.map((artifact: { path: string }) => artifact.path).sort(), ["db/globals.sql.zst", "db/ledger.pgdump.zst", "db/postgres.pgdump.zst", "db/shop.pgdump.zst"]);
    const shop = record.artifacts.find((artifact: { path: string }) => artifact.path === "db/shop.pgdump.zst");
    assert.deepEqual(shop.facts.counts, { "public.account_a": 50000, "public.account_b": 50000, "public.orders": 60000 });
    assert.equal(shop.facts.owner, "postgres");
    const verify = await composure("verify", { ...env, RUN: runUnderLoad });
    assert.equal(verify.code, 0, verify.stderr);
  });

  test("dropping a table and corrupting another, then restoring, gives exactly the dumped checksums", async () => {
    quiescentSums = await checksums();
    const backup = await composure("backup", { ...env, SERVICE: "db" });
    assert.equal(backup.code, 0, backup.stderr);
    quiescentRun = runIds().at(-1)!;
    const startedAt = await project.startedAt("db");
    await psql("shop", "DROP TABLE orders");
    await psql("ledger", "UPDATE entries SET body = 'corrupt' WHERE id % 1000 = 0; DELETE FROM tags WHERE id > 5000");
    await psql("shop", "UPDATE account_a SET total = -1 WHERE id < 100");
    assert.notDeepEqual(await checksums(), quiescentSums);
    const dry = await composure("restore", { ...env, RUN: quiescentRun, SERVICE: "db", DRY_RUN: "1" });
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /would restore database shop from db\/shop\.pgdump\.zst: drop database shop/);
    const started = performance.now();
    const restore = await composure("restore", { ...env, RUN: quiescentRun, SERVICE: "db", FORCE: "1" });
    const took = seconds(started);
    assert.equal(restore.code, 0, restore.stderr);
    console.log(`# restore of 230,000 rows (with a rescue dump first): ${took} s`);
    assert.match(restore.stderr, /restored database shop from db\/shop\.pgdump\.zst .*as recorded at backup time/);
    assert.deepEqual(await checksums(), quiescentSums);
    assert.equal(await psql("shop", "SELECT tableowner FROM pg_tables WHERE tablename = 'orders'"), "reporter", "ownership kept");
    assert.equal(await project.startedAt("db"), startedAt, "a restore does not stop the server");
    assert.match(restore.stderr, /rescue copy of the replaced data: run \S+-rescue/);
  });

  test("the dump taken under load restores to two tables that agree, with the recorded row counts", async () => {
    const started = performance.now();
    const restore = await composure("restore", { ...env, RUN: runUnderLoad, SERVICE: "db", FORCE: "1", NO_RESCUE: "1" });
    assert.equal(restore.code, 0, restore.stderr);
    console.log(`# restore of the dump taken under load: ${seconds(started)} s`);
    assert.equal(await psql("shop", "SELECT count(*) FROM account_a a JOIN account_b b USING (id) WHERE a.total <> b.total"), "0");
    const total = Number(await psql("shop", "SELECT sum(total) FROM account_a"));
    assert.equal(Number(await psql("shop", "SELECT sum(total) FROM account_b")), total);
    assert.ok(total > 0, "the dump holds the writer's transactions up to its snapshot");
    const facts = manifestOf(runUnderLoad).services[0].artifacts.find((artifact: { path: string }) => artifact.path === "db/shop.pgdump.zst").facts;
    for (const [table, count] of Object.entries(facts.counts)) {
      assert.equal(Number(await psql("shop", `SELECT count(*) FROM ${table}`)), count, `${table} has the recorded row count`);
    }
  });

  test("with two parallel restore jobs the dump goes through a file in the container and gives the same checksums", async () => {
    const config = path.join(tempDir("sql-postgres-config"), "composure.yml");
    const { writeFileSync } = await import("node:fs");
    writeFileSync(config, "services:\n  db:\n    options: { jobs: 2 }\n");
    await psql("ledger", "DROP TABLE tags");
    const restore = await composure("restore", { ...env, CONFIG: config, RUN: quiescentRun, SERVICE: "db", VOLUME: "ledger", FORCE: "1", NO_RESCUE: "1" });
    assert.equal(restore.code, 0, restore.stderr);
    assert.match(restore.stderr, /restored database ledger .*\(2 jobs\)/);
    assert.doesNotMatch(restore.stderr, /database shop/, "VOLUME= selects one database");
    const sums = await checksums();
    for (const key of Object.keys(sums).filter((name) => name.startsWith("ledger."))) assert.equal(sums[key], quiescentSums[key]);
    assert.equal(await docker("exec", db, "sh", "-c", "ls /tmp | grep -c composure-restore || true"), "0", "the temporary dump is removed");
  });

  test("wrong password, a server that is not ready and an image without pg_dump fail clearly, alone, and the run is partial", async () => {
    const plan = await composure("plan", env);
    assert.equal(plan.code, 0, plan.stderr);
    assert.match(plan.stdout, /db: strategy postgres \(detected from image\), no downtime/);
    assert.match(plan.stdout, /nodump: strategy postgres \(label\)/);
    const watcher = watchArgv(secrets);
    const backup = await composure("backup", env);
    const argv = await watcher.stop();
    assert.equal(backup.code, 1, backup.stderr);
    const manifest = manifestOf(runIds().at(-1)!);
    assert.equal(manifest.outcome, "partial");
    const byName = Object.fromEntries(manifest.services.map((service: { name: string }) => [service.name, service]));
    assert.equal(byName.db.status, "ok", "the healthy server is still backed up");
    assert.equal(byName.db.artifacts.length, 4);
    assert.equal(byName.rotated.status, "failed");
    assert.match(byName.rotated.error, /service rotated .*wrong password for user postgres \(from POSTGRES_PASSWORD\)/);
    assert.equal(byName.notready.status, "failed");
    assert.match(byName.notready.error, /service notready .*PostgreSQL is not ready: the server does not answer/);
    assert.equal(byName.nodump.status, "failed");
    assert.match(byName.nodump.error, /service nodump .*pg_dump is not in the image .*busybox.*PostgreSQL client tools/);
    for (const name of ["rotated", "notready", "nodump"]) assert.match(backup.stderr, new RegExp(`${name}: backup failed: .*service ${name}`));
    assert.deepEqual(argv.hits, []);
    for (const secret of secrets) assert.ok(!backup.stderr.includes(secret) && !backup.stdout.includes(secret));
    assert.deepEqual(await filesContaining(path.join(destination, project.name), secrets), []);
  });

  test("probe answers with the live facts and the recorded ones, and they agree after a restore", async () => {
    const { discoverProject } = await import("../../scripts/lib/compose/discover.ts");
    const { getStrategy } = await import("../../scripts/lib/strategies/registry.ts");
    const strategy = getStrategy("postgres");
    const restore = await composure("restore", { ...env, RUN: quiescentRun, SERVICE: "db", FORCE: "1", NO_RESCUE: "1" });
    assert.equal(restore.code, 0, restore.stderr);
    const discovered = await discoverProject(project.name);
    const service = discovered.services.find((candidate) => candidate.name === "db")!;
    const artifacts = manifestOf(quiescentRun).services[0].artifacts;
    const ctx = { project: discovered, service, options: strategy.options.parse({}), settings: {} } as never;
    const probe = await strategy.probe!(ctx, artifacts);
    assert.equal(probe.ok, true, JSON.stringify(probe.differences));
    const facts = probe.facts as { databases: Record<string, { counts: Record<string, number> }>; recorded: Record<string, { counts: Record<string, number> }> };
    assert.deepEqual(facts.recorded.shop.counts, { "public.account_a": 50000, "public.account_b": 50000, "public.orders": 60000 });
    assert.deepEqual(facts.databases.shop.counts, facts.recorded.shop.counts);
    assert.deepEqual(facts.databases.ledger.counts, { "public.entries": 60000, "public.tags": 10000 });
    await psql("ledger", "DELETE FROM tags WHERE id > 9000");
    const damaged = await strategy.probe!(ctx, artifacts);
    assert.equal(damaged.ok, false);
    assert.match(JSON.stringify(damaged.differences), /ledger: table public.tags has 9000 rows, recorded 10000/);
  });

  test("repository engine: a second backup after changing 1% of the rows adds at most 20% of the first dumps' bytes; the restore is exact", async () => {
    const repositoryEnv = { ...env, SERVICE: "db", DESTINATION: tempDir("sql-postgres-repository"), STORAGE: "repository" };
    const repositoryRuns = backupsOf(path.join(repositoryEnv.DESTINATION, project.name), "plain");
    await psql("postgres", "CREATE DATABASE bulk");
    await psql("bulk", "CREATE TABLE events (id int PRIMARY KEY, body text NOT NULL); INSERT INTO events SELECT g, repeat(md5(g::text), 3) FROM generate_series(1, 400000) g");
    tables.bulk = ["events"];
    try {
      const dumps = (run: string) => repositoryRuns.manifestOf(run).services[0].artifacts.filter((artifact: { facts?: { kind?: string } }) => artifact.facts?.kind === "database");
      const first = await composure("backup", repositoryEnv);
      assert.equal(first.code, 0, first.stderr);
      const firstBytes = dumps(repositoryRuns.runIds().at(-1)!).reduce((sum: number, artifact: { bytes: number }) => sum + artifact.bytes, 0);
      // 1% of every table's rows, in one stretch of ids (as an application updates its recent rows)
      await psql("shop", "UPDATE account_a SET total = total + 5 WHERE id <= 500; UPDATE account_b SET total = total + 5 WHERE id <= 500; UPDATE orders SET note = 'changed' WHERE id <= 600");
      await psql("ledger", "UPDATE entries SET body = 'changed' WHERE id <= 600; UPDATE tags SET name = 'changed' WHERE id <= 100");
      await psql("bulk", "UPDATE events SET body = 'changed' WHERE id <= 4000");
      const changed = await checksums();
      const second = await composure("backup", repositoryEnv);
      assert.equal(second.code, 0, second.stderr);
      const secondRun = repositoryRuns.runIds().at(-1)!;
      const added = dumps(secondRun).reduce((sum: number, artifact: { repository: { addedBytes: number } }) => sum + artifact.repository.addedBytes, 0);
      console.log(`# repository engine: first dumps ${firstBytes} bytes, the second backup (1% of rows changed) added ${added} bytes (${((added / firstBytes) * 100).toFixed(1)}%)`);
      assert.ok(added <= firstBytes * 0.2, `the second backup added ${added} bytes, more than 20% of ${firstBytes}`);
      await psql("shop", "DROP TABLE orders");
      await psql("bulk", "DELETE FROM events WHERE id % 7 = 0");
      const restore = await composure("restore", { ...repositoryEnv, RUN: secondRun, FORCE: "1", NO_RESCUE: "1" });
      assert.equal(restore.code, 0, restore.stderr);
      assert.deepEqual(await checksums(), changed);
    } finally {
      delete tables.bulk;
      await psql("postgres", "DROP DATABASE IF EXISTS bulk WITH (FORCE)");
    }
  });
});

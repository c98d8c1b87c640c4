// Acceptance of the sqlite strategy on the fixture app (one open connection in WAL mode writing a
// row every half second): a hot copy under a second writer is consistent and never stops the
// app; a restore after damage stops the app, replaces the files and brings back exactly the
// copied state; a service without sqlite3 uses the helper image named by composure.sqlite.image,
// and fails clearly without one; probe returns the facts.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { backupsOf, ComposeProject, composure, docker, fixtureImage, requireDocker, seconds, tempDir, waitFor } from "../support/composure.ts";
import { Writer } from "../support/writers.ts";

const image = fixtureImage("sqlite");

const project = new ComposeProject(
  `cmpt-sqlsq${process.pid}`,
  `
version: "3.8"
services:
  app:
    image: ${image}
    environment: { APP_INTERVAL: "0.5" }
    volumes: ["data:/data"]
    labels:
      composure.strategy: sqlite
      composure.sqlite.paths: /data/app.db, /data/ledger.db
  plain:
    image: $BUSYBOX
    init: true
    command: ["sleep", "100000"]
    volumes: ["plain:/srv"]
    labels:
      composure.strategy: sqlite
      composure.sqlite.paths: /srv/plain.db
      composure.sqlite.image: ${image}
  nosqlite:
    image: $BUSYBOX
    init: true
    command: ["sleep", "100000"]
    volumes: ["plain:/srv"]
    labels:
      composure.strategy: sqlite
      composure.sqlite.paths: /srv/plain.db
  outside:
    image: $BUSYBOX
    init: true
    command: ["sleep", "100000"]
    labels:
      composure.strategy: sqlite
      composure.sqlite.paths: /tmp/not-in-a-volume.db
volumes: { data: {}, plain: {} }
`,
);
const destination = tempDir("sql-sqlite-dest");
const env = { PROJECT: project.name, DESTINATION: destination };
let app: string;

const sqlite = (file: string, sql: string) => docker("exec", app, "sqlite3", "-batch", "-cmd", ".timeout 20000", file, sql);

// Over two database files, next to the app's own live `ticks` table.
const dataset: [string, string][] = [
  [
    "/data/app.db",
    `CREATE TABLE account_a (id INTEGER PRIMARY KEY, total INTEGER NOT NULL);
     CREATE TABLE account_b (id INTEGER PRIMARY KEY, total INTEGER NOT NULL);
     CREATE TABLE orders (id INTEGER PRIMARY KEY, account INTEGER NOT NULL, note TEXT NOT NULL);
     WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 20000) INSERT INTO account_a SELECT i, 0 FROM s;
     INSERT INTO account_b SELECT id, total FROM account_a;
     WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 30000) INSERT INTO orders SELECT i, i % 20000 + 1, hex(randomblob(12)) FROM s;`,
  ],
  [
    "/data/ledger.db",
    `PRAGMA journal_mode = WAL;
     CREATE TABLE entries (id INTEGER PRIMARY KEY, body TEXT NOT NULL);
     WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 30000) INSERT INTO entries SELECT i, 'entry ' || i FROM s;`,
  ],
];
const tables: Record<string, string[]> = { "/data/app.db": ["account_a", "account_b", "orders"], "/data/ledger.db": ["entries"] };

/** count:sha256 of every row in id order, per table (the app's `ticks` keep growing: not compared). */
async function checksums(): Promise<Record<string, string>> {
  const sums: Record<string, string> = {};
  for (const [file, names] of Object.entries(tables)) {
    for (const name of names) {
      const rows = await sqlite(file, `SELECT * FROM ${name} ORDER BY id`).catch((error) => `missing (${(error as Error).message.split("\n")[0]})`);
      sums[`${file}:${name}`] = `${rows.split("\n").length}:${createHash("sha256").update(rows).digest("hex")}`;
    }
  }
  return sums;
}

const writerScript = `i=0; ( echo ".timeout 20000"; while [ ! -e /tmp/stop-writer ]; do i=$((i+1)); k=$((i % 20000 + 1));
  echo "BEGIN IMMEDIATE; UPDATE account_a SET total = total + 1 WHERE id = $k; UPDATE account_b SET total = total + 1 WHERE id = $k; COMMIT;";
  [ $((i % 25)) -eq 0 ] && sleep 0.05; done ) | sqlite3 -bail /data/app.db`;

const { runIds, manifestOf } = backupsOf(path.join(destination, project.name), "plain");

describe("sqlite strategy", { timeout: 300_000 }, () => {
  let runUnderLoad: string;
  let quiescentRun: string;
  let quiescentSums: Record<string, string>;

  before(async () => {
    await requireDocker();
    await project.up();
    app = await project.containerId("app");
    await waitFor("the app's database", async () => Number(await sqlite("/data/app.db", "SELECT count(*) FROM ticks")) > 0);
    for (const [file, sql] of dataset) await sqlite(file, sql);
    await docker("run", "--rm", "-v", `${project.volume("plain")}:/srv`, image, "sqlite3", "/srv/plain.db", "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT); INSERT INTO notes (body) VALUES ('one'), ('two');");
  });
  after(async () => {
    await project.down().catch(() => undefined);
  });

  test("a copy taken while two writers commit is consistent and never stops the app", async () => {
    const startedAt = await project.startedAt("app");
    const writer = new Writer(app, writerScript);
    await waitFor("the writer's first commits", async () => Number(await sqlite("/data/app.db", "SELECT sum(total) FROM account_a")) > 50);
    const started = performance.now();
    const backup = await composure("backup", { ...env, SERVICE: "app" });
    const took = seconds(started);
    await writer.stop();
    assert.equal(backup.code, 0, backup.stderr);
    console.log(`# copy of 100,000 rows in two files under write load: ${took} s`);
    assert.equal(await project.startedAt("app"), startedAt, "the app was never stopped");
    runUnderLoad = runIds().at(-1)!;
    const record = manifestOf(runUnderLoad).services[0];
    assert.deepEqual(record.stopped, []);
    assert.deepEqual(record.artifacts.map((artifact: { path: string }) => artifact.path), ["app/app.db.sqlite.zst", "app/ledger.db.sqlite.zst"]);
    assert.equal(record.artifacts[0].facts.journalMode, "wal");
    assert.equal(record.artifacts[0].facts.counts.account_a, 20000);
    assert.ok(record.artifacts[0].facts.counts.ticks > 0, "the app's rows still in its WAL are in the copy");
    assert.deepEqual(record.artifacts[1].facts.counts, { entries: 30000 });
    const verify = await composure("verify", { ...env, RUN: runUnderLoad });
    assert.equal(verify.code, 0, verify.stderr);
  });

  test("dropping a table and corrupting another, then restoring, gives exactly the copied checksums", async () => {
    quiescentSums = await checksums();
    const backup = await composure("backup", { ...env, SERVICE: "app" });
    assert.equal(backup.code, 0, backup.stderr);
    quiescentRun = runIds().at(-1)!;
    await sqlite("/data/app.db", "DROP TABLE orders; UPDATE account_a SET total = -1 WHERE id < 100;");
    await sqlite("/data/ledger.db", "UPDATE entries SET body = 'corrupt' WHERE id % 100 = 0;");
    assert.notDeepEqual(await checksums(), quiescentSums);
    const startedAt = await project.startedAt("app");
    const dry = await composure("restore", { ...env, RUN: quiescentRun, SERVICE: "app", DRY_RUN: "1" });
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /would replace \/data\/app\.db \(in volume \S+_data\) with app\/app\.db\.sqlite\.zst .*stop \S+app\S*, remove its -wal and -shm/);
    const started = performance.now();
    const restore = await composure("restore", { ...env, RUN: quiescentRun, SERVICE: "app", FORCE: "1" });
    const took = seconds(started);
    assert.equal(restore.code, 0, restore.stderr);
    console.log(`# restore of two files (with a rescue copy first): ${took} s`);
    assert.match(restore.stderr, /replaced \/data\/app\.db with app\/app\.db\.sqlite\.zst/);
    assert.ok(await project.running("app"), "the app runs again");
    assert.notEqual(await project.startedAt("app"), startedAt, "the app was stopped for the swap");
    assert.deepEqual(await checksums(), quiescentSums);
    assert.equal((await sqlite("/data/app.db", "PRAGMA integrity_check")).trim(), "ok");
    assert.equal((await sqlite("/data/ledger.db", "PRAGMA journal_mode")).trim(), "wal", "the journal mode is kept");
    assert.match(restore.stderr, /rescue copy of the replaced data: run \S+-rescue/);
  });

  test("the copy taken under load restores to two tables that agree", async () => {
    const restore = await composure("restore", { ...env, RUN: runUnderLoad, SERVICE: "app", VOLUME: "/data/app.db", FORCE: "1", NO_RESCUE: "1" });
    assert.equal(restore.code, 0, restore.stderr);
    assert.doesNotMatch(restore.stderr, /ledger\.db/, "VOLUME= selects one file");
    assert.equal(await sqlite("/data/app.db", "SELECT count(*) FROM account_a a JOIN account_b b USING (id) WHERE a.total <> b.total"), "0");
    const total = Number(await sqlite("/data/app.db", "SELECT sum(total) FROM account_a"));
    assert.equal(Number(await sqlite("/data/app.db", "SELECT sum(total) FROM account_b")), total);
    assert.ok(total > 0, "the copy holds the writer's transactions up to its snapshot");
  });

  test("a service without sqlite3 is copied by the helper image it names, fails clearly without one, and the run is partial", async () => {
    const backup = await composure("backup", env);
    assert.equal(backup.code, 1, backup.stderr);
    const manifest = manifestOf(runIds().at(-1)!);
    assert.equal(manifest.outcome, "partial");
    const byName = Object.fromEntries(manifest.services.map((service: { name: string }) => [service.name, service]));
    assert.equal(byName.app.status, "ok");
    assert.equal(byName.plain.status, "ok", byName.plain.error);
    assert.deepEqual(byName.plain.artifacts[0].facts.counts, { notes: 2 });
    assert.equal(byName.nosqlite.status, "failed");
    assert.match(byName.nosqlite.error, /service nosqlite .*sqlite3 is not in the image .*busybox.*set composure\.sqlite\.image/);
    assert.equal(byName.outside.status, "failed");
    assert.match(byName.outside.error, /service outside .*\/tmp\/not-in-a-volume\.db is not inside a volume or bind mount of the service/);
    const missing = await composure("plan", { ...env, CONFIG: await configWithout() });
    assert.equal(missing.code, 2, "a sqlite service without paths is a configuration error");
    assert.match(missing.stderr, /service plain: at 'composure\.sqlite\.paths'/);
  });

  test("probe answers with the live facts and the recorded ones", async () => {
    const { discoverProject } = await import("../../scripts/lib/compose/discover.ts");
    const { getStrategy } = await import("../../scripts/lib/strategies/registry.ts");
    const strategy = getStrategy("sqlite");
    const restore = await composure("restore", { ...env, RUN: quiescentRun, SERVICE: "app", FORCE: "1", NO_RESCUE: "1" });
    assert.equal(restore.code, 0, restore.stderr);
    const discovered = await discoverProject(project.name);
    const service = discovered.services.find((candidate) => candidate.name === "app")!;
    const artifacts = manifestOf(quiescentRun).services[0].artifacts.filter((artifact: { path: string }) => artifact.path.includes("ledger"));
    const ctx = { project: discovered, service, options: strategy.options.parse({ paths: "/data/ledger.db" }), settings: {} } as never;
    const probe = await strategy.probe!(ctx, artifacts);
    assert.equal(probe.ok, true, JSON.stringify(probe.differences));
    const facts = probe.facts as { databases: Record<string, { counts: Record<string, number> }>; recorded: Record<string, { counts: Record<string, number> }> };
    assert.deepEqual(facts.recorded["/data/ledger.db"].counts, { entries: 30000 });
    assert.deepEqual(facts.databases["/data/ledger.db"].counts, { entries: 30000 });
  });
});

/** A composure.yml that takes the paths option away from `plain`. */
async function configWithout(): Promise<string> {
  const { writeFileSync } = await import("node:fs");
  const file = path.join(tempDir("sql-sqlite-config"), "composure.yml");
  writeFileSync(file, "services:\n  plain:\n    options: { paths: [] }\n");
  return file;
}

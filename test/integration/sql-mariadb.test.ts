// Acceptance of the mariadb strategy on the fixture image: a hot backup under a writer is
// consistent and never stops the server; a restore after damage brings back exactly the dumped
// state (accounts included); wrong password, a server that is not ready and an image without
// mariadb-dump fail clearly and alone; no password ever shows in argv, logs, manifest or files
// (the root password comes from MARIADB_ROOT_PASSWORD_FILE); probe returns the facts.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { backupsOf, ComposeProject, composure, docker, fixtureImage, requireDocker, seconds, tempDir, waitFor } from "../support/composure.ts";
import { Writer, filesContaining, watchArgv } from "../support/writers.ts";

const password = `mdpw-${randomBytes(9).toString("hex")}`;
const otherPassword = `mdother-${randomBytes(9).toString("hex")}`;
const appPassword = `mdapp-${randomBytes(9).toString("hex")}`;
const image = fixtureImage("mariadb");

const project = new ComposeProject(
  `cmpt-sqlmd${process.pid}`,
  `
version: "3.8"
services:
  db:
    image: ${image}
    command: ["mariadbd", "--innodb-buffer-pool-size=64M"]
    environment:
      MARIADB_ROOT_PASSWORD_FILE: /run/secrets/root-password
      MARIADB_DATABASE: shop
      MARIADB_USER: app
      MARIADB_PASSWORD: "${appPassword}"
      MARIADB_INITDB_SKIP_TZINFO: "1"
    volumes: ["mysql:/var/lib/mysql", "./root-password:/run/secrets/root-password:ro"]
  rotated:
    image: ${image}
    command: ["mariadbd", "--innodb-buffer-pool-size=16M"]
    environment: { MARIADB_ROOT_PASSWORD: "${otherPassword}", MARIADB_INITDB_SKIP_TZINFO: "1" }
  notready:
    image: ${image}
    init: true
    command: ["sleep", "100000"]
  nodump:
    image: $BUSYBOX
    init: true
    command: ["sleep", "100000"]
    labels: { composure.strategy: mariadb }
volumes: { mysql: {} }
`,
);
writeFileSync(path.join(project.dir, "root-password"), `${password}\n`, { mode: 0o644 });
const destination = tempDir("sql-mariadb-dest");
const env = { PROJECT: project.name, DESTINATION: destination };
const secrets = [password, otherPassword, appPassword];
let db: string;

/** The client as root inside the container; the password from the file, never in argv. */
const client = (sql: string, container = db) =>
  docker("exec", container, "sh", "-c", `MYSQL_PWD="$(cat /run/secrets/root-password 2>/dev/null || printf %s "$MARIADB_ROOT_PASSWORD")" mariadb -uroot -N -B -e "$1"`, "sh", sql);

const dataset = `
  USE shop;
  CREATE TABLE account_a (id INT PRIMARY KEY, total BIGINT NOT NULL) ENGINE=InnoDB;
  CREATE TABLE account_b (id INT PRIMARY KEY, total BIGINT NOT NULL) ENGINE=InnoDB;
  CREATE TABLE orders (id INT PRIMARY KEY, account INT NOT NULL, amount DECIMAL(12,2) NOT NULL, note CHAR(32) NOT NULL) ENGINE=InnoDB;
  INSERT INTO account_a SELECT seq, 0 FROM seq_1_to_50000;
  INSERT INTO account_b SELECT seq, 0 FROM seq_1_to_50000;
  INSERT INTO orders SELECT seq, seq % 50000 + 1, (seq * 7 % 10000) / 100, MD5(seq) FROM seq_1_to_60000;
  CREATE TRIGGER orders_note BEFORE INSERT ON orders FOR EACH ROW SET NEW.note = UPPER(NEW.note);
  CREATE DATABASE ledger;
  USE ledger;
  CREATE TABLE entries (id BIGINT PRIMARY KEY, at DATETIME NOT NULL, body VARCHAR(64) NOT NULL) ENGINE=InnoDB;
  INSERT INTO entries SELECT seq, '2024-01-01 00:00:00' + INTERVAL seq MINUTE, REPEAT(MD5(seq), 2) FROM seq_1_to_60000;
  CREATE TABLE tags (id INT PRIMARY KEY, name VARCHAR(32) NOT NULL) ENGINE=InnoDB;
  INSERT INTO tags SELECT seq, CONCAT('tag ', seq) FROM seq_1_to_10000;
  CREATE PROCEDURE tag_count() SELECT COUNT(*) FROM tags;
  CREATE USER 'reporter'@'%' IDENTIFIED BY 'reporter-pw';
  GRANT SELECT ON ledger.* TO 'reporter'@'%';`;
const tables: Record<string, Record<string, string>> = {
  shop: { account_a: "id, total", account_b: "id, total", orders: "id, account, amount, note" },
  ledger: { entries: "id, at, body", tags: "id, name" },
};

async function checksums(): Promise<Record<string, string>> {
  const sums: Record<string, string> = {};
  for (const [database, names] of Object.entries(tables)) {
    for (const [name, columns] of Object.entries(names)) {
      sums[`${database}.${name}`] = await client(
        `SET SESSION group_concat_max_len = 1073741824; SELECT CONCAT(COUNT(*), ':', COALESCE(MD5(GROUP_CONCAT(CONCAT_WS('|', ${columns}) ORDER BY id SEPARATOR '\\n')), '')) FROM ${database}.${name}`,
      ).catch((error) => `missing (${(error as Error).message.split("\n")[0]})`);
    }
  }
  return sums;
}

const writerScript = `i=0; while [ ! -e /tmp/stop-writer ]; do i=$((i+1)); k=$((i % 50000 + 1));
  echo "START TRANSACTION; UPDATE shop.account_a SET total = total + 1 WHERE id = $k; UPDATE shop.account_b SET total = total + 1 WHERE id = $k; COMMIT;";
  [ $((i % 25)) -eq 0 ] && sleep 0.05; done | MYSQL_PWD="$(cat /run/secrets/root-password)" mariadb -uroot`;

const { runIds, manifestOf } = backupsOf(path.join(destination, project.name), "plain");

describe("mariadb strategy", { timeout: 360_000 }, () => {
  let runUnderLoad: string;
  let quiescentRun: string;
  let quiescentSums: Record<string, string>;

  before(async () => {
    await requireDocker();
    await project.up();
    db = await project.containerId("db");
    const rotated = await project.containerId("rotated");
    // TCP answers only once the set-up server (networking off) has made way for the real one.
    const answers = (container: string) => docker("exec", container, "sh", "-c", `MYSQL_PWD="$(cat /run/secrets/root-password 2>/dev/null || printf %s "$MARIADB_ROOT_PASSWORD")" mariadb -uroot -h 127.0.0.1 -e "SELECT 1"`).then(() => true);
    await waitFor("the mariadb services", async () => (await answers(db)) && (await answers(rotated)), 120_000);
    const started = performance.now();
    await client(dataset);
    console.log(`# dataset of 230,000 rows loaded in ${seconds(started)} s`);
    // "rotated": root's password was changed after initialisation, its MARIADB_ROOT_PASSWORD is stale.
    await client("ALTER USER 'root'@'localhost' IDENTIFIED BY 'rotated-elsewhere'; ALTER USER 'root'@'%' IDENTIFIED BY 'rotated-elsewhere';", rotated);
  });
  after(async () => {
    await project.down().catch(() => undefined);
  });

  test("a backup taken while a writer commits is consistent, never stops the server and shows no password anywhere", async () => {
    const startedAt = await project.startedAt("db");
    const writer = new Writer(db, writerScript);
    await waitFor("the writer's first commits", async () => Number(await client("SELECT SUM(total) FROM shop.account_a")) > 50);
    const sumBefore = Number(await client("SELECT SUM(total) FROM shop.account_a"));
    const canary = `canary-${randomBytes(6).toString("hex")}`;
    const watcher = watchArgv([...secrets, canary]);
    await docker("exec", db, "sh", "-c", "sleep 0.3", canary);
    const started = performance.now();
    const backup = await composure("backup", { ...env, SERVICE: "db" });
    const took = seconds(started);
    const argv = await watcher.stop();
    await writer.stop();
    const sumAfter = Number(await client("SELECT SUM(total) FROM shop.account_a"));
    assert.equal(backup.code, 0, backup.stderr);
    console.log(`# backup of 230,000 rows under write load: ${took} s; argv of ${argv.processes} processes read in ${argv.scans} scans`);
    assert.ok(sumAfter > sumBefore, "the writer committed during the backup");
    assert.equal(await project.startedAt("db"), startedAt, "the server was never stopped");
    assert.ok(argv.hits.some((hit) => hit.startsWith("sh -c sleep 0.3")), "the watcher sees the argv of processes in containers");
    assert.ok(argv.scans > 50, `argv was scanned often enough (${argv.scans} scans)`);
    assert.deepEqual(argv.hits.filter((hit) => !hit.includes(canary)), [], "no process had a password in its argv");
    for (const secret of secrets) assert.ok(!backup.stdout.includes(secret) && !backup.stderr.includes(secret), "no password in the output");
    runUnderLoad = runIds().at(-1)!;
    assert.deepEqual(await filesContaining(path.join(destination, project.name, runUnderLoad), secrets), [], "no password in the manifest or any file of the run");
    assert.deepEqual(await filesContaining(path.resolve(import.meta.dirname, "../../exporters/textfile"), secrets), [], "no password in the metrics");
    const record = manifestOf(runUnderLoad).services.find((service: { name: string }) => service.name === "db");
    assert.equal(record.strategy, "mariadb", "detected from the image");
    assert.deepEqual(record.stopped, []);
    assert.deepEqual(record.artifacts.map((artifact: { path: string }) => artifact.path).sort(), ["db/ledger.sql.zst", "db/shop.sql.zst", "db/users.sql.zst"]);
    const shop = record.artifacts.find((artifact: { path: string }) => artifact.path === "db/shop.sql.zst");
    assert.deepEqual(shop.facts.counts, { account_a: 50000, account_b: 50000, orders: 60000 });
    const verify = await composure("verify", { ...env, RUN: runUnderLoad });
    assert.equal(verify.code, 0, verify.stderr);
  });

  test("dropping a table and corrupting another, then restoring, gives exactly the dumped checksums, routines, triggers and accounts", async () => {
    quiescentSums = await checksums();
    const backup = await composure("backup", { ...env, SERVICE: "db" });
    assert.equal(backup.code, 0, backup.stderr);
    quiescentRun = runIds().at(-1)!;
    const startedAt = await project.startedAt("db");
    await client("DROP TABLE shop.orders; UPDATE ledger.entries SET body = 'corrupt' WHERE id % 1000 = 0; DELETE FROM ledger.tags WHERE id > 5000; UPDATE shop.account_a SET total = -1 WHERE id < 100; DROP USER 'reporter'@'%'");
    assert.notDeepEqual(await checksums(), quiescentSums);
    const started = performance.now();
    const restore = await composure("restore", { ...env, RUN: quiescentRun, SERVICE: "db", FORCE: "1" });
    const took = seconds(started);
    assert.equal(restore.code, 0, restore.stderr);
    console.log(`# restore of 230,000 rows (with a rescue dump first): ${took} s`);
    assert.match(restore.stderr, /restored database shop from db\/shop\.sql\.zst .*as recorded at backup time/);
    assert.deepEqual(await checksums(), quiescentSums);
    assert.equal(await client("SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = 'shop'"), "1", "the trigger is back");
    assert.equal(await client("CALL ledger.tag_count()"), "10000", "the procedure is back");
    assert.match(await client("SHOW GRANTS FOR 'reporter'@'%'"), /GRANT SELECT ON `ledger`\.\* TO `reporter`@`%`/, "the account and its grant are back");
    assert.equal(await project.startedAt("db"), startedAt, "a restore does not stop the server");
    assert.match(restore.stderr, /rescue copy of the replaced data: run \S+-rescue/);
  });

  test("the dump taken under load restores to two tables that agree, with the recorded row counts", async () => {
    const started = performance.now();
    const restore = await composure("restore", { ...env, RUN: runUnderLoad, SERVICE: "db", VOLUME: "shop", FORCE: "1", NO_RESCUE: "1" });
    assert.equal(restore.code, 0, restore.stderr);
    console.log(`# restore of the shop database dumped under load: ${seconds(started)} s`);
    assert.equal(await client("SELECT COUNT(*) FROM shop.account_a a JOIN shop.account_b b USING (id) WHERE a.total <> b.total"), "0");
    const total = Number(await client("SELECT SUM(total) FROM shop.account_a"));
    assert.equal(Number(await client("SELECT SUM(total) FROM shop.account_b")), total);
    assert.ok(total > 0, "the dump holds the writer's transactions up to its snapshot");
  });

  test("wrong password, a server that is not ready and an image without mariadb-dump fail clearly, alone, and the run is partial", async () => {
    const watcher = watchArgv(secrets);
    const backup = await composure("backup", env);
    const argv = await watcher.stop();
    assert.equal(backup.code, 1, backup.stderr);
    const manifest = manifestOf(runIds().at(-1)!);
    assert.equal(manifest.outcome, "partial");
    const byName = Object.fromEntries(manifest.services.map((service: { name: string }) => [service.name, service]));
    assert.equal(byName.db.status, "ok", "the healthy server is still backed up");
    assert.equal(byName.db.artifacts.length, 3);
    assert.equal(byName.rotated.status, "failed");
    assert.match(byName.rotated.error, /service rotated .*wrong password for root \(from MARIADB_ROOT_PASSWORD\).*Access denied/);
    assert.equal(byName.notready.status, "failed");
    assert.match(byName.notready.error, /service notready .*the database server is not ready: it does not accept connections/);
    assert.equal(byName.nodump.status, "failed");
    assert.match(byName.nodump.error, /service nodump .*mariadb-dump or mysqldump is not in the image .*busybox/);
    for (const name of ["rotated", "notready", "nodump"]) assert.match(backup.stderr, new RegExp(`${name}: backup failed: .*service ${name}`));
    assert.deepEqual(argv.hits, []);
    for (const secret of secrets) assert.ok(!backup.stderr.includes(secret) && !backup.stdout.includes(secret));
    assert.deepEqual(await filesContaining(path.join(destination, project.name), secrets), []);
  });

  test("probe answers with the live facts and the recorded ones", async () => {
    const { discoverProject } = await import("../../scripts/lib/compose/discover.ts");
    const { getStrategy } = await import("../../scripts/lib/strategies/registry.ts");
    const strategy = getStrategy("mariadb");
    const discovered = await discoverProject(project.name);
    const service = discovered.services.find((candidate) => candidate.name === "db")!;
    const artifacts = manifestOf(quiescentRun).services[0].artifacts;
    const ctx = { project: discovered, service, options: strategy.options.parse({}), settings: {} } as never;
    const probe = await strategy.probe!(ctx, artifacts);
    assert.equal(probe.ok, true, JSON.stringify(probe.differences));
    const facts = probe.facts as { databases: Record<string, { counts: Record<string, number> }>; recorded: Record<string, { counts: Record<string, number> }> };
    assert.deepEqual(facts.recorded.ledger.counts, { entries: 60000, tags: 10000 });
    assert.deepEqual(facts.databases.ledger.counts, facts.recorded.ledger.counts);
    await client("DELETE FROM ledger.tags WHERE id > 9000");
    const damaged = await strategy.probe!(ctx, artifacts);
    assert.equal(damaged.ok, false);
    assert.match(JSON.stringify(damaged.differences), /ledger: table tags has 9000 rows, recorded 10000/);
  });
});

// A whole-run restore goes on past a failed service: with the database stopped, the app's volume
// that depends on it is still restored (the database's turn comes first), the summary table names
// which service failed and which was ok, the command exits 1, the rescue run is sealed, and the
// retry command it suggests restores the failed service alone once the cause is fixed.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { ComposeProject, composure, docker, eventually, fixtureImage, inVolumes, requireDocker, restoreSummary, snapshotVolume, tempDir } from "../support/composure.ts";

// The dependency comes from depends_on alone: Compose v2 records it in a label, Compose v1
// (docker-compose 1.29, what CI installs) does not, and discovery reads the project's compose file.
const project = new ComposeProject(
  `cmpt-rsum${process.pid}`,
  `
version: "3.8"
services:
  db:
    image: ${fixtureImage("mariadb")}
    command: ["mariadbd", "--innodb-buffer-pool-size=16M"]
    environment: { MARIADB_ROOT_PASSWORD: "summary-root-pw", MARIADB_DATABASE: shop, MARIADB_INITDB_SKIP_TZINFO: "1" }
    volumes: ["mysql:/var/lib/mysql"]
  app:
    image: $BUSYBOX
    init: true
    command: ["sleep", "100000"]
    volumes: ["files:/files"]
    depends_on: [db]
volumes: { mysql: {}, files: {} }
`,
);
const destination = tempDir("restore-summary-dest");
const env = { PROJECT: project.name, DESTINATION: destination };
const files = project.volume("files");
let runId: string;

const sql = async (statement: string) => docker("exec", await project.containerId("db"), "sh", "-c", 'MYSQL_PWD="$MARIADB_ROOT_PASSWORD" mariadb -uroot -h 127.0.0.1 -N -B -e "$1"', "sh", statement);

describe("a whole-run restore past a failed service", { timeout: 300_000 }, () => {
  before(async () => {
    await requireDocker();
    await project.up();
    // TCP answers only once the set-up server (networking off) has made way for the real one.
    await eventually("mariadb answering", () => sql("SELECT 1"), 120);
    await sql("CREATE TABLE shop.items (id INT PRIMARY KEY); INSERT INTO shop.items VALUES (1), (2), (3)");
    await inVolumes([`${files}:/files`], "echo original > /files/a.txt; mkdir -p /files/sub; echo kept > /files/sub/b.txt");
    const backup = await composure("backup", env);
    assert.equal(backup.code, 0, backup.stderr);
    runId = JSON.parse((await composure("list", env, ["--json"])).stdout)[0].run;
  });
  after(async () => {
    await project.down().catch(() => undefined);
  });

  test("a dry run previews the app, names the database whose preview failed and exits 1", async () => {
    await docker("stop", await project.containerId("db"));
    const preview = await composure("restore", { ...env, DRY_RUN: "1" });
    assert.equal(preview.code, 1, preview.stderr);
    assert.match(preview.stdout, /^app: would /m, "the app's preview is printed");
    assert.doesNotMatch(preview.stdout, /^db: /m);
    assert.match(preview.stderr, /db: preview failed: restore of service db failed/);
    assert.match(preview.stderr, new RegExp(`make restore PROJECT=${project.name} RUN=${runId} SERVICE=db DRY_RUN=1`));
    assert.match(preview.stderr, /the preview of db failed/);
    assert.doesNotMatch(preview.stderr, /SERVICE +STRATEGY/, "no summary table for a dry run");
  });

  test("the app's volume is restored, the summary names the failed database, the rescue run is sealed, exit 1", async () => {
    const expected = await snapshotVolume(files);
    await inVolumes([`${files}:/files`], "echo damaged > /files/a.txt; rm -rf /files/sub");
    assert.notEqual(await snapshotVolume(files), expected, "the volume was damaged");
    assert.equal(await project.running("db"), false, "the database is stopped");

    const restore = await composure("restore", { ...env, FORCE: "1" });
    assert.equal(restore.code, 1, restore.stderr);
    assert.equal(await snapshotVolume(files), expected, "the app's volume is restored despite the failed database");
    assert.ok(await project.running("app"), "the app runs again");

    const summary = restoreSummary(restore.stderr);
    console.log(restore.stderr.trimEnd().replace(/^/gm, "# "));
    assert.equal(summary.headline, `restore of run ${runId} into project ${project.name}: 1 of 2 services restored, 1 failed (db)`);
    assert.deepEqual(summary.rows.map((row) => [row.SERVICE, row.STRATEGY, row.RESULT]), [["db", "mariadb", "failed"], ["app", "volume", "ok"]], "db first: app depends on it");
    assert.match(summary.rows[0]["WHAT IT DID"], /restore of service db failed/);
    assert.match(summary.rows[1]["WHAT IT DID"], /./);
    assert.match(restore.stderr, /db: not restored, its preview failed: restore of service db failed/);
    assert.match(restore.stderr, new RegExp(`db: .*make restore PROJECT=${project.name} RUN=${runId} SERVICE=db FORCE=1\` restores that service alone`));

    const rescueRun = /rescue copy of the replaced data: run (\S+-rescue)/.exec(restore.stderr)?.[1];
    assert.ok(rescueRun, restore.stderr);
    const manifestFile = path.join(destination, project.name, rescueRun, "manifest.json");
    assert.ok(existsSync(manifestFile), "the rescue run is sealed");
    const manifest = JSON.parse(readFileSync(manifestFile, "utf8"));
    assert.deepEqual(manifest.services.map((service: { name: string }) => service.name), ["app"], "only the app's data was replaced");
    assert.ok(!existsSync(path.join(destination, project.name, ".lock")), "the lock is released");
  });

  test("once the database runs again, the suggested command restores it alone", async () => {
    await docker("start", await project.containerId("db"));
    await eventually("mariadb answering", () => sql("SELECT 1"), 120);
    await sql("DELETE FROM shop.items WHERE id > 1");
    const retry = await composure("restore", { ...env, RUN: runId, SERVICE: "db", FORCE: "1" });
    assert.equal(retry.code, 0, retry.stderr);
    assert.deepEqual(restoreSummary(retry.stderr).rows.map((row) => [row.SERVICE, row.RESULT]), [["db", "ok"]]);
    assert.equal(await sql("SELECT COUNT(*) FROM shop.items"), "3");
  });
});

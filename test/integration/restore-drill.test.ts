// Restore drills (make verify DEEP=1) over a stack with every single-node strategy: the drill
// passes and reports restore times while production keeps running untouched; an archive altered
// to drop data and re-sealed with matching checksums fails the drill naming the service and the
// fact; nothing of a drill remains after it, after a failed one, and after one killed with
// SIGKILL followed by any composure command. Then a migration: project A's backup restored as
// project B on the same engine while A keeps running; and the README's disaster-recovery runbook
// followed step by step from a WebDAV remote alone.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { busyboxImage, ComposeProject, composure, docker, eventually, fixtureImage, inVolumes, requireDocker, snapshotVolume, tempDir } from "../support/composure.ts";
import { RcloneServer } from "../support/remotes.ts";

const images = Object.fromEntries(["postgres", "mariadb", "sqlite", "redis", "prometheus", "victoriametrics"].map((name) => [name, fixtureImage(name)]));

// An app with a volume and a PostgreSQL database: part of the full stack and the whole DR stack.
const appAndDb = `
  app:
    image: $BUSYBOX
    init: true
    command: ["sleep", "100000"]
    volumes: ["appdata:/data"]
  db:
    image: ${images.postgres}
    environment: { POSTGRES_PASSWORD: "drill-pg-pw", POSTGRES_DB: shop }
    volumes: ["pgdata:/var/lib/postgresql/data"]`;
const stackYaml = `
version: "3.8"
services:${appAndDb}
  maria:
    image: ${images.mariadb}
    command: ["mariadbd", "--innodb-buffer-pool-size=32M"]
    environment: { MARIADB_ROOT_PASSWORD: "drill-md-pw", MARIADB_DATABASE: ledger, MARIADB_INITDB_SKIP_TZINFO: "1" }
    volumes: ["mysql:/var/lib/mysql"]
  lite:
    image: ${images.sqlite}
    environment: { APP_INTERVAL: "0.5" }
    volumes: ["litedata:/data"]
    labels: { composure.strategy: sqlite, composure.sqlite.paths: /data/app.db }
  cache:
    image: ${images.redis}
    command: ["redis-server", "--appendonly", "yes"]
    volumes: ["cachedata:/data"]
  prom:
    image: ${images.prometheus}
    command: ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus", "--web.enable-admin-api"]
    labels: { composure.prometheus.query: synthetic_series }
    volumes: ["tsdb:/prometheus"]
  vm:
    image: ${images.victoriametrics}
    labels: { composure.victoriametrics.query: synthetic_series }
    volumes: ["vmdata:/victoria-metrics-data"]
volumes: { appdata: {}, pgdata: {}, mysql: {}, litedata: {}, cachedata: {}, tsdb: {}, vmdata: {} }
`;
const services = ["app", "db", "maria", "lite", "cache", "prom", "vm"];
const project = new ComposeProject(`cmpt-drill${process.pid}`, stackYaml);
const destination = tempDir("drill-dest");
const env = { PROJECT: project.name, DESTINATION: destination };
const ids = new Map<string, string>();
const idOf = async (compose: ComposeProject, service: string) => {
  const key = `${compose.name}/${service}`;
  if (!ids.has(key)) ids.set(key, await compose.containerId(service));
  return ids.get(key)!;
};
const psql = async (compose: ComposeProject, sql: string) => docker("exec", "-e", "PGPASSWORD=drill-pg-pw", await idOf(compose, "db"), "psql", "-X", "-A", "-t", "-U", "postgres", "-d", "shop", "-c", sql);
const mariadb = async (compose: ComposeProject, sql: string) => docker("exec", "-e", "MYSQL_PWD=drill-md-pw", await idOf(compose, "maria"), "mariadb", "-uroot", "-N", "-B", "-e", sql);

/** Rows, keys and series in every engine; the app volume's files. */
async function seed(compose: ComposeProject): Promise<void> {
  await inVolumes([`${compose.volume("appdata")}:/data`], "mkdir -p /data/docs && for i in $(seq 1 300); do echo doc $i > /data/docs/d$i.txt; done; dd if=/dev/urandom of=/data/blob bs=1M count=3 2>/dev/null");
  await eventually("postgres", () => psql(compose, "CREATE TABLE IF NOT EXISTS orders (id int PRIMARY KEY, note text); INSERT INTO orders SELECT g, 'o' || g FROM generate_series(1, 20000) g ON CONFLICT DO NOTHING;"));
  await eventually("mariadb", () => mariadb(compose, "USE ledger; CREATE TABLE IF NOT EXISTS entries (id INT PRIMARY KEY, amount INT); INSERT IGNORE INTO entries SELECT seq, seq * 3 FROM seq_1_to_5000;"));
  await eventually("redis", async () => docker("exec", await idOf(compose, "cache"), "sh", "-c", "for i in $(seq 1 500); do echo SET key:$i value-$i; done | redis-cli"));
  const now = Math.floor(Date.now() / 1000);
  const samples: string[] = [];
  for (let time = now - 4 * 3600; time <= now - 3600; time += 60) samples.push(`synthetic_series{instance="a",job="synthetic"} ${(time / 60) % 97} ${time * 1000}`);
  await eventually("victoriametrics", async () => execFileSync("docker", ["exec", "-i", await idOf(compose, "vm"), "curl", "-sf", "--data-binary", "@-", "http://localhost:8428/api/v1/import/prometheus"], { input: `${samples.join("\n")}\n` }));
  await eventually("victoriametrics flush", async () => docker("exec", await idOf(compose, "vm"), "curl", "-sf", "http://localhost:8428/internal/force_flush"));
  await eventually("prometheus", async () => docker("exec", await idOf(compose, "prom"), "curl", "-sf", "http://localhost:9090/-/ready"));
  await eventually("sqlite", async () => docker("exec", await idOf(compose, "lite"), "sh", "-c", "test -s /data/app.db"));
}

/** Drill objects of this project's drills (other test files may drill at the same time). */
async function drillLeftovers(): Promise<string> {
  const mine = `label=composure.drill.source=${project.name}`;
  const containers = await docker("ps", "-aq", "--filter", mine);
  const volumes = await docker("volume", "ls", "-q", "--filter", mine);
  const networks = await docker("network", "ls", "-q", "--filter", mine);
  return [containers, volumes, networks].join("").trim();
}

async function startedAtAll(compose: ComposeProject): Promise<Record<string, string>> {
  const entries = await Promise.all(services.map(async (service) => [service, await docker("inspect", "-f", "{{.State.StartedAt}}", await idOf(compose, service))]));
  return Object.fromEntries(entries);
}

describe("restore drills over every single-node strategy", { timeout: 1_200_000 }, () => {
  let runId: string;

  before(async () => {
    await requireDocker();
    await project.up();
    await seed(project);
    const backup = await composure("backup", env);
    assert.equal(backup.code, 0, backup.stderr);
    runId = /run (\S+) success/.exec(backup.stderr)![1];
  });
  after(async () => {
    await project.down().catch(() => undefined);
    rmSync(destination, { recursive: true, force: true });
  });

  test("a drill of the run passes for every service, reports restore times, and leaves production alone", async () => {
    const startedBefore = await startedAtAll(project);
    const appBefore = await snapshotVolume(project.volume("appdata"));
    const drill = await composure("verify", { ...env, DEEP: "1" }, ["--json"]);
    assert.equal(drill.code, 0, drill.stderr);
    const report = JSON.parse(drill.stdout).drill;
    assert.equal(report.run, runId);
    assert.deepEqual(report.results.map((result: { service: string }) => result.service).sort(), [...services].sort());
    for (const result of report.results) {
      assert.ok(result.ok, `${result.service}: ${result.message}`);
      assert.ok(result.restoreSeconds > 0 && result.totalSeconds >= result.restoreSeconds, `${result.service} reports its times`);
    }
    assert.match(drill.stderr, /drill ok +\S+\/db \(postgres\): restored in (\d+ min )?[\d.]+ s, answers as recorded/);
    assert.match(drill.stderr, /restored and answered as recorded in (\d+ min )?[\d.]+ s/);
    console.log(`# drill of ${services.length} services: ${report.seconds.toFixed(1)} s; ${report.results.map((r: { service: string; totalSeconds: number }) => `${r.service} ${r.totalSeconds.toFixed(1)} s`).join(", ")}`);
    assert.deepEqual(await startedAtAll(project), startedBefore, "no production container was stopped or restarted");
    assert.equal(await snapshotVolume(project.volume("appdata")), appBefore, "the production volume is unchanged");
    assert.equal(await psql(project, "SELECT count(*) FROM orders"), "20000");
    assert.equal(await drillLeftovers(), "", "no drill container, volume or network remains");
    const metrics = readFileSync(path.join(os.tmpdir(), "composure-test-metrics", `composure-${project.name}.prom`), "utf8");
    assert.match(metrics, new RegExp(`composure_last_restore_drill_success\\{project="${project.name}",service="db",tier="[a-z]+"\\} 1`));
    assert.match(metrics, /composure_last_restore_drill_duration_seconds\{[^}]*service="db"[^}]*\} [\d.]+/);
  });

  test("on the repository engine (STORAGE=repository) a drill passes for every service: each strategy's sources round-trip through restic", async () => {
    const repositoryEnv = { ...env, DESTINATION: tempDir("drill-repository-dest"), STORAGE: "repository" };
    const backup = await composure("backup", repositoryEnv);
    assert.equal(backup.code, 0, backup.stderr);
    const drill = await composure("verify", { ...repositoryEnv, DEEP: "1" }, ["--json"]);
    assert.equal(drill.code, 0, drill.stderr);
    const { findings, drill: report } = JSON.parse(drill.stdout);
    assert.ok(findings.some((finding: { run: string; ok: boolean }) => finding.run === "repository" && finding.ok), "restic check of the repository passed");
    const stored = findings.filter((finding: { artifact?: string }) => finding.artifact).length;
    assert.ok(stored >= services.length, `every service's artifacts were verified (${stored})`);
    for (const result of report.results) assert.ok(result.ok, `${result.service}: ${result.message}`);
    assert.deepEqual(report.results.map((result: { service: string }) => result.service).sort(), [...services].sort());
  });

  test("an archive altered to drop data and re-sealed with matching checksums fails the drill, naming the service and the fact", async () => {
    const runDir = path.join(destination, project.name, runId);
    const manifestFile = path.join(runDir, "manifest.json");
    const original = readFileSync(manifestFile);
    const manifest = JSON.parse(original.toString("utf8"));
    const artifact = manifest.services.find((record: { name: string }) => record.name === "app").artifacts[0];
    const archive = path.join(runDir, artifact.path);
    const saved = readFileSync(archive);
    try {
      const work = tempDir("drill-alter");
      // Re-packed by busybox tar, like a capture, with one file less.
      execFileSync("sh", ["-c", `zstd -qdc "$1" > "$2/a.tar"`, "sh", archive, work]);
      await docker("run", "--rm", "-v", `${work}:/w`, busyboxImage, "sh", "-c", "mkdir /w/x && cd /w/x && tar xf /w/a.tar && rm docs/d7.txt && tar cf /w/b.tar .");
      execFileSync("zstd", ["-q", "-f", "-o", archive, path.join(work, "b.tar")]);
      artifact.bytes = statSync(archive).size;
      artifact.sha256 = createHash("sha256").update(readFileSync(archive)).digest("hex");
      writeFileSync(manifestFile, JSON.stringify(manifest, null, 2));
      const plain = await composure("verify", env);
      assert.equal(plain.code, 0, `checksums match, so plain verify passes: ${plain.stderr}`);
      const drill = await composure("verify", { ...env, DEEP: "1" });
      assert.equal(drill.code, 1, drill.stderr);
      assert.match(drill.stderr, /drill FAILED +\S+\/app \(volume\): restored, but differs from the backup: volume appdata: entries 301, recorded 302; volume appdata: files 300, recorded 301/);
      assert.match(drill.stderr, /drill ok +\S+\/db \(postgres\)/, "the other services still pass");
      assert.equal(await drillLeftovers(), "", "a failed drill leaves nothing behind");
    } finally {
      writeFileSync(archive, saved);
      writeFileSync(manifestFile, original);
    }
  });

  test("a drill killed with SIGKILL leaves its scratch stack to the next composure command, which removes it", async () => {
    const drill = composure("verify", { ...env, DEEP: "1" });
    await eventually("a drill container to appear", async () => assert.notEqual(await docker("ps", "-q", "--filter", `label=composure.drill.source=${project.name}`), ""), 120);
    drill.kill("SIGKILL");
    await drill;
    assert.notEqual(await drillLeftovers(), "", "SIGKILL leaves the scratch stack");
    const list = await composure("list", env);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stderr, /removed the scratch containers, volumes and network of an interrupted restore drill/);
    assert.equal(await drillLeftovers(), "");
  });

  test("migration: A's backup restored as project B on the same engine runs with A's data while A keeps running", async () => {
    const target = new ComposeProject(`cmpt-drillb${process.pid}`, stackYaml);
    try {
      const missing = await composure("restore", { ...env, INTO: target.name, FORCE: "1" });
      assert.equal(missing.code, 2, missing.stderr);
      assert.match(missing.stderr, new RegExp(`project ${target.name} has no containers for .*docker compose -p ${target.name} up -d`));
      await target.up();
      await eventually("B's postgres", () => psql(target, "SELECT 1"));
      await eventually("B's mariadb", () => mariadb(target, "SELECT 1"));
      const startedBefore = await startedAtAll(project);
      const restore = await composure("restore", { ...env, INTO: target.name, FORCE: "1" });
      assert.equal(restore.code, 0, restore.stderr);
      assert.equal(await psql(target, "SELECT count(*) FROM orders"), "20000");
      assert.equal(await mariadb(target, "SELECT count(*) FROM ledger.entries"), "5000");
      assert.equal(await snapshotVolume(target.volume("appdata")), await snapshotVolume(project.volume("appdata")), "B's app volume holds A's files");
      assert.equal((await docker("exec", await idOf(target, "cache"), "redis-cli", "DBSIZE")).trim(), "500");
      assert.deepEqual(await startedAtAll(project), startedBefore, "A kept running");
      assert.equal(await psql(project, "SELECT count(*) FROM orders"), "20000");
    } finally {
      await target.down().catch(() => undefined);
    }
  });
});

describe("the README's disaster-recovery runbook, followed from a WebDAV remote alone", { timeout: 600_000 }, () => {
  const server = new RcloneServer("webdav", "drsite");
  const dr = new ComposeProject(`cmpt-dr${process.pid}`, `version: "3.8"\nservices:${appAndDb}\nvolumes: { appdata: {}, pgdata: {} }\n`);
  const drDestination = tempDir("dr-dest");
  const config = path.join(tempDir("dr-config"), "composure.yml");
  writeFileSync(config, 'remote:\n  target: "drsite:offsite"\n');
  const drEnv = () => ({ PROJECT: dr.name, DESTINATION: drDestination, CONFIG: config, ...server.clientEnv() });

  before(async () => {
    await requireDocker();
    await server.start();
    await dr.up();
    await inVolumes([`${dr.volume("appdata")}:/data`], "echo precious > /data/precious.txt");
    await eventually("postgres", () => psql(dr, "CREATE TABLE IF NOT EXISTS orders (id int PRIMARY KEY); INSERT INTO orders SELECT generate_series(1, 1234) ON CONFLICT DO NOTHING;"));
    const backup = await composure("backup", drEnv());
    assert.equal(backup.code, 0, backup.stderr);
  });
  after(async () => {
    await dr.down().catch(() => undefined);
    await server.stop();
  });

  test("host lost: containers, volumes and the local catalog gone; the remote brings everything back", async () => {
    const appBefore = await snapshotVolume(dr.volume("appdata"));
    // The disaster: the stack's containers and volumes and every local backup are gone.
    await dr.down();
    ids.clear();
    rmSync(drDestination, { recursive: true, force: true });
    // Step 2: list what the remote holds.
    const list = await composure("list", { ...drEnv(), FROM: "remote" }, ["--json"]);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /"run": "\d{8}T\d{6}Z"/);
    // Step 3: start the stack empty from its compose file.
    await dr.up();
    await eventually("fresh postgres", () => psql(dr, "SELECT 1"));
    // Step 4: restore the latest run from the remote.
    const restore = await composure("restore", { ...drEnv(), FROM: "remote", FORCE: "1" });
    assert.equal(restore.code, 0, restore.stderr);
    // Step 5: check it.
    assert.equal(await psql(dr, "SELECT count(*) FROM orders"), "1234");
    assert.equal(await snapshotVolume(dr.volume("appdata")), appBefore);
    const verify = await composure("verify", { ...drEnv(), DEEP: "1" });
    assert.equal(verify.code, 0, verify.stderr);
  });
});

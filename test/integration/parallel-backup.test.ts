// Services captured side by side (`parallelism:`): three independent services, one of them in
// stop mode, are captured at once (all three wait together at the capture failpoint, and the log
// starts every capture before the first one ends); a run killed with SIGKILL while all three are
// capturing leaves an incomplete run that is not listed, and the next backup restarts the
// stopped service first and captures every service.
import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { backupsOf, ComposeProject, composure, docker, eventually, fixtureImage, inVolumes, requireDocker, tempDir, waitFor } from "../support/composure.ts";

const project = new ComposeProject(
  `cmpt-parallel${process.pid}`,
  `
version: "3.8"
services:
  db:
    image: ${fixtureImage("postgres")}
    environment: { POSTGRES_PASSWORD: "parallel-pw", POSTGRES_DB: shop }
    volumes: ["pgdata:/var/lib/postgresql/data"]
  cache:
    image: ${fixtureImage("redis")}
    volumes: ["cachedata:/data"]
  files:
    image: $BUSYBOX
    init: true
    command: ["sleep", "100000"]
    volumes: ["files:/data"]
volumes: { pgdata: {}, cachedata: {}, files: {} }
`,
);
const config = path.join(tempDir("parallel-config"), "composure.yml");
const destination = tempDir("parallel-dest");
const env = { PROJECT: project.name, DESTINATION: destination, CONFIG: config };
const { runIds, manifestOf } = backupsOf(path.join(destination, project.name));
const services = ["db", "cache", "files"];

describe("services captured side by side", { timeout: 600_000 }, () => {
  before(async () => {
    await requireDocker();
    writeFileSync(config, "parallelism: 3\n");
    await project.up();
    await inVolumes([`${project.volume("files")}:/data`], "dd if=/dev/urandom of=/data/blob bs=1M count=64 2>/dev/null; echo hello > /data/hello");
    const db = await project.containerId("db");
    await eventually("postgres", () => docker("exec", db, "psql", "-U", "postgres", "-d", "shop", "-c", "CREATE TABLE IF NOT EXISTS t AS SELECT g AS id FROM generate_series(1, 50000) g"));
  });
  after(async () => {
    await project.down().catch(() => undefined);
  });

  test("with parallelism 3 every capture starts before the first one ends, and the stop-mode service is down only for its own", async () => {
    const backup = await composure("backup", env);
    assert.equal(backup.code, 0, backup.stderr);
    assert.match(backup.stderr, /3 units, up to 3 captured at once/);
    const lines = backup.stderr.split("\n");
    const started = services.map((service) => lines.findIndex((line) => line.includes(`${service}: capture started`)));
    const finished = services.map((service) => lines.findIndex((line) => new RegExp(`${service}: \\d+ artifact\\(s\\)`).test(line)));
    assert.ok(started.every((index) => index >= 0) && finished.every((index) => index >= 0), backup.stderr);
    assert.ok(Math.max(...started) < Math.min(...finished), `every capture starts before the first one ends:\n${backup.stderr}`);
    const manifest = manifestOf(runIds().at(-1)!);
    const record = (name: string) => manifest.services.find((entry: { name: string }) => entry.name === name);
    assert.deepEqual(manifest.services.map((entry: { name: string }) => entry.name), ["cache", "db", "files"], "records in plan order");
    assert.ok(record("files").downtimeSeconds > 0 && record("db").downtimeSeconds === 0 && record("cache").downtimeSeconds === 0);
  });

  test("kill -9 while three captures run: the run is incomplete and not listed; the next backup restarts the stopped service and captures all", async () => {
    const marker = path.join(tempDir("parallel-failpoint"), "reached");
    const before = new Set(runIds());
    const child = composure("backup", { ...env, COMPOSURE_FAILPOINT: "backup:capture", COMPOSURE_FAILPOINT_MARKER: marker });
    const arrivals = () => (existsSync(`${marker}.arrivals`) ? readFileSync(`${marker}.arrivals`, "utf8").split("\n").filter(Boolean).sort() : []);
    await waitFor("all three captures at the failpoint", () => arrivals().length === 3, 120_000, 100);
    assert.deepEqual(arrivals(), ["cache", "db", "files"], "three captures wait together");
    assert.equal(await project.running("files"), false, "the stop-mode service is stopped for its capture");
    process.kill(child.pid!, "SIGKILL");
    await child;
    const killed = [...runIds()].filter((id) => !before.has(id));
    assert.equal(killed.length, 1);

    const next = await composure("backup", env);
    assert.equal(next.code, 0, next.stderr);
    for (const service of services) assert.ok(await project.running(service), `${service} runs`);
    const newest = runIds().at(-1)!;
    assert.deepEqual(manifestOf(newest).services.map((entry: { status: string }) => entry.status), ["ok", "ok", "ok"]);
    const listed = JSON.parse((await composure("list", env, ["--json"])).stdout).map((run: { run: string }) => run.run);
    assert.ok(!listed.includes(killed[0]), "the killed run is not listed");
    assert.ok(listed.includes(newest));
  });
});

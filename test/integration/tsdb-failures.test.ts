// When a TSDB snapshot cannot be taken (admin API off, server unreachable) the run names the
// service and the fix, backs up the other services and ends partial; when the capture fails
// after the snapshot was taken, the snapshot is deleted all the same. No snapshot directory is
// ever left in a volume.
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { ComposeProject, busyboxImage, composure, docker, fixtureImage, inVolumes, requireDocker, tempDir } from "../support/composure.ts";

const prometheus = fixtureImage("prometheus");
const victoriametrics = fixtureImage("victoriametrics");
const project = new ComposeProject(
  `cmpt-tsdbfail${process.pid}`,
  `
version: "3.8"
services:
  promoff:
    image: ${prometheus}
    volumes: ["promoff:/prometheus"]
  promon:
    image: ${prometheus}
    command: ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus", "--web.enable-admin-api"]
    volumes: ["promon:/prometheus"]
  vmwrongurl:
    image: ${victoriametrics}
    labels: { composure.victoriametrics.url: "http://localhost:9999" }
    volumes: ["vmwrongurl:/victoria-metrics-data"]
  vmon:
    image: ${victoriametrics}
    volumes: ["vmon:/victoria-metrics-data"]
  app:
    image: $BUSYBOX
    init: true
    command: ["sleep", "100000"]
    volumes: ["files:/files"]
volumes: { promoff: {}, promon: {}, vmwrongurl: {}, vmon: {}, files: {} }
`,
);
const destination = tempDir("tsdbfail-dest");
const env = { PROJECT: project.name, DESTINATION: destination };

/** Every entry under any snapshots/ directory of the TSDB volumes. */
async function snapshotLeftovers(): Promise<string> {
  const volumes = ["promoff", "promon", "vmwrongurl", "vmon"].map((name) => `${project.volume(name)}:/v/${name}:ro`);
  return (await inVolumes(volumes, "find /v -maxdepth 6 -path '*/snapshots/*' | sort")).trim();
}

async function manifestOf(): Promise<any> {
  const listed = JSON.parse((await composure("list", env, ["--json"])).stdout);
  return JSON.parse(readFileSync(path.join(destination, project.name, listed[0].run, "manifest.json"), "utf8"));
}

describe("tsdb snapshot failures", { timeout: 600_000 }, () => {
  before(async () => {
    await requireDocker();
    await project.up();
    await new Promise((resolve) => setTimeout(resolve, 3000));
  });
  after(async () => {
    await project.down().catch(() => undefined);
  });

  test("admin API off or server unreachable: the error names the service and the fix, the others are backed up", async () => {
    const outcome = await composure("backup", env);
    assert.equal(outcome.code, 1, outcome.stderr);
    assert.match(outcome.stderr, /promoff: backup failed: Prometheus of service promoff has its admin API disabled.*add --web\.enable-admin-api to the command of service promoff/);
    assert.match(outcome.stderr, /vmwrongurl: backup failed: cannot reach VictoriaMetrics of service vmwrongurl at http:\/\/localhost:9999.*composure\.victoriametrics\.url/);
    const manifest = await manifestOf();
    assert.equal(manifest.outcome, "partial");
    const status = Object.fromEntries(manifest.services.map((service: { name: string; status: string }) => [service.name, service.status]));
    assert.deepEqual(status, { app: "ok", promoff: "failed", promon: "ok", vmon: "ok", vmwrongurl: "failed" });
    assert.equal(await snapshotLeftovers(), "", "no snapshot directory left behind");
  });

  test("a capture that fails after the snapshot was taken still deletes it", async () => {
    const brokenImage = "composure-test/broken-tar-tsdb:latest";
    const context = tempDir("broken-tar-tsdb");
    writeFileSync(path.join(context, "Dockerfile"), `FROM ${busyboxImage}\nRUN rm /bin/tar && printf '#!/bin/sh\\necho injected tar failure >&2\\nexit 3\\n' > /bin/tar && chmod +x /bin/tar\n`);
    await docker("build", "-q", "-t", brokenImage, context);
    for (const service of ["promon", "vmon"]) {
      const failed = await composure("backup", { ...env, SERVICE: service, COMPOSURE_HELPER_IMAGE: brokenImage });
      assert.equal(failed.code, 1, failed.stderr);
      assert.match(failed.stderr, new RegExp(`${service}: snapshot \\S+ deleted`));
      assert.match(failed.stderr, /injected tar failure/);
      assert.ok(await project.running(service));
    }
    assert.equal(await snapshotLeftovers(), "", "no snapshot directory left behind");
  });

  test("a snapshot left by a run killed with SIGKILL is removed by the next run", async () => {
    // A helper whose tar waits: the snapshot surely exists when the run is killed.
    const slowImage = "composure-test/slow-tar-tsdb:latest";
    const context = tempDir("slow-tar-tsdb");
    writeFileSync(path.join(context, "Dockerfile"), `FROM ${busyboxImage}\nRUN rm /bin/tar && printf '#!/bin/sh\\nsleep 60\\nexec /bin/busybox tar "$@"\\n' > /bin/tar && chmod +x /bin/tar\n`);
    await docker("build", "-q", "-t", slowImage, context);
    const container = await project.containerId("vmon");
    const killed = composure("backup", { ...env, SERVICE: "vmon", COMPOSURE_HELPER_IMAGE: slowImage });
    let snapshot = "";
    for (let attempt = 0; attempt < 600 && !snapshot; attempt++) {
      snapshot = (await docker("exec", container, "ls", "/victoria-metrics-data/snapshots").catch(() => "")).trim();
      if (!snapshot) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.ok(snapshot, "the run took a snapshot");
    await new Promise((resolve) => setTimeout(resolve, 3000)); // well into the (slow) capture
    killed.kill("SIGKILL");
    await killed;
    assert.match(await snapshotLeftovers(), new RegExp(snapshot), "the killed run could not delete it");

    const next = await composure("backup", { ...env, SERVICE: "vmon" });
    assert.equal(next.code, 0, next.stderr);
    assert.match(next.stderr, new RegExp(`vmon: removed VictoriaMetrics snapshot snapshots/${snapshot} left behind by an interrupted run`));
    assert.equal(await snapshotLeftovers(), "", "no snapshot directory left behind");
  });
});

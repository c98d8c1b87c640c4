// Acceptance of `make schedule` (scripts/schedule.ts) on a real Compose project with a
// seconds-level schedule: runs happen one after another, never overlapping; SIGTERM during a run
// (while the service is stopped for its capture) lets the run restart it, and the scheduler
// exits 0.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { busyboxImage, commandArguments, ComposeProject, inVolumes, repoRoot, requireDocker, tempDir, waitFor } from "../support/composure.ts";

const project = new ComposeProject(
  `cmpt-sched${process.pid}`,
  `
version: "3.8"
services:
  db:
    image: $BUSYBOX
    init: true
    command: ["sleep", "100000"]
    volumes: ["data:/data"]
  web:
    image: $BUSYBOX
    init: true
    command: ["sleep", "100000"]
    volumes: ["site:/site"]
    labels: { composure.tier: low }
volumes: { data: {}, site: {} }
`,
);
const destination = tempDir("schedule-dest");
const projectDir = path.join(destination, project.name);

function completeRuns(): { runId: string; startedAt: string; finishedAt: string; services: { name: string }[] }[] {
  if (!existsSync(projectDir)) return [];
  return readdirSync(projectDir)
    .filter((name) => /^\d{8}T/.test(name) && existsSync(path.join(projectDir, name, "manifest.json")))
    .sort()
    .map((name) => JSON.parse(readFileSync(path.join(projectDir, name, "manifest.json"), "utf8")));
}

const until = (condition: () => boolean, what: string) => waitFor(what, condition, 120_000, 10);

describe("make schedule", { timeout: 600_000 }, () => {
  before(async () => {
    await requireDocker();
    await project.up();
    // enough data that the capture (while db is stopped) takes a moment
    await inVolumes([`${project.volume("data")}:/data`], "dd if=/dev/urandom of=/data/blob bs=1M count=64 2>/dev/null");
  });
  after(async () => {
    await project.down().catch(() => undefined);
  });

  test("runs every second without overlapping, and SIGTERM mid-run leaves every service running and exits 0", async () => {
    const config = path.join(tempDir("schedule-config"), "composure.yml");
    // medium (db) every second; a 2 s pre hook makes each run outlast several ticks
    writeFileSync(
      config,
      [
        "schedule:",
        '  critical: false',
        '  medium: "* * * * * *"',
        "  low: false",
        "  verify: false",
        "  prune: false",
        "  sync: false",
        "services:",
        '  db: { exec: { pre: ["sleep", "2"] } }',
        "",
      ].join("\n"),
    );
    const child = spawn(process.execPath, commandArguments("schedule"), {
      cwd: repoRoot,
      env: { ...process.env, COMPOSURE_HELPER_IMAGE: busyboxImage, CONFIG: config, PROJECT: project.name, DESTINATION: destination, METRICS_DIR: tempDir("schedule-textfile"), LOCK_TIMEOUT: "0" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on("close", (code, signal) => resolve({ code, signal })));
    try {
      await until(() => completeRuns().length >= 2, "two scheduled runs");
      // the third run: signal it while db is stopped for its capture
      await until(() => existsSync(path.join(projectDir, ".stopped.json")), "the third run to stop db");
      child.kill("SIGTERM");
      const { code, signal } = await exited;
      assert.equal(signal, null, stderr);
      assert.equal(code, 0, stderr);
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
    }

    assert.ok(await project.running("db"), `db runs again\n${stderr}`);
    assert.ok(await project.running("web"), "web was never touched");
    assert.ok(!existsSync(path.join(projectDir, ".stopped.json")), "nothing left stopped in the journal");
    const lockFile = path.join(projectDir, ".lock");
    if (existsSync(lockFile)) {
      // an interrupted run exits from its signal handler: its lock is stale and the next run takes it over
      const holder = JSON.parse(readFileSync(lockFile, "utf8")) as { pid: number };
      assert.throws(() => process.kill(holder.pid, 0), "the lock's holder is gone");
    }

    const runs = completeRuns();
    assert.ok(runs.length >= 2);
    for (const run of runs) assert.deepEqual(run.services.map((service) => service.name), ["db"], "TIER=medium backs up the medium services only");
    for (let index = 1; index < runs.length; index++) {
      assert.ok(Date.parse(runs[index].startedAt) >= Date.parse(runs[index - 1].finishedAt), `run ${runs[index].runId} overlaps ${runs[index - 1].runId}`);
    }
    assert.doesNotMatch(stderr, /waiting for the lock/, "no run ever waited for another");

    const health = stdout.split("\n").filter((line) => line.startsWith("composure-schedule "));
    assert.ok(health.length >= 3, stdout);
    for (const line of health.slice(0, -1)) assert.match(line, /job=backup-medium result=ok exit=0 .* next=\d{4}-/);
    assert.match(health.at(-1)!, /job=backup-medium result=interrupted exit=143 /);
    assert.match(stderr, /scheduler stopped/);
  });
});

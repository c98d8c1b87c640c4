// The scheduler's queue with stand-in jobs (no Docker): runs never overlap, a tick of a job that
// is already running or queued is dropped, and stop() passes SIGTERM to the running job once and
// waits for it to finish its cleanup.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { appendFileSync, mkdtempSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, test } from "node:test";
import type { Job } from "../../scripts/lib/schedule/jobs.ts";
import { Scheduler, healthLine, type JobRun } from "../../scripts/lib/schedule/scheduler.ts";
import { waitFor } from "../support/composure.ts";

/** A stand-in job: records start and end, takes `seconds`, on SIGTERM records "released" and exits 0. */
function fakeStart(logFile: string, seconds: number) {
  return (job: Job) =>
    spawn(process.execPath, ["-e", `
      const fs = require("node:fs");
      const note = (what) => fs.appendFileSync(${JSON.stringify(logFile)}, JSON.stringify({ job: ${JSON.stringify(job.name)}, what, at: Date.now() }) + "\\n");
      note("start");
      process.on("SIGTERM", () => { setTimeout(() => { note("released"); process.exit(0); }, 300); });
      setTimeout(() => { note("end"); process.exit(0); }, ${seconds * 1000});
    `], { stdio: "ignore" });
}

const job = (name: string, expression = "* * * * * *"): Job => ({ name, key: "medium", expression, target: "backup", variables: {} });

function events(logFile: string): { job: string; what: string; at: number }[] {
  try {
    return readFileSync(logFile, "utf8").trim().split("\n").filter(Boolean).map((line) => JSON.parse(line));
  } catch {
    return [];
  }
}

const until = (condition: () => boolean) => waitFor("the condition", condition, 20_000, 25);

describe("scheduler", { timeout: 60_000 }, () => {
  test("two jobs ticking every second run one at a time, never overlapping", async () => {
    const logFile = path.join(mkdtempSync(path.join(os.tmpdir(), "composure-scheduler-")), "events.jsonl");
    const runs: JobRun[] = [];
    const scheduler = new Scheduler({ jobs: [job("backup-critical"), job("backup-medium")], start: fakeStart(logFile, 1.5), health: (_line, run) => runs.push(run) });
    scheduler.start();
    await until(() => runs.length >= 4);
    await scheduler.stop();
    const sorted = [...runs].sort((a, b) => a.startedAt.getTime() - b.startedAt.getTime());
    for (let index = 1; index < sorted.length; index++) {
      assert.ok(sorted[index].startedAt >= sorted[index - 1].finishedAt, `run ${index} started before run ${index - 1} ended`);
    }
    assert.deepEqual(new Set(runs.map((run) => run.job.name)), new Set(["backup-critical", "backup-medium"]), "both jobs got their turn");
    const log = events(logFile);
    let open = 0;
    for (const event of log) {
      open += event.what === "start" ? 1 : event.what === "end" || event.what === "released" ? -1 : 0;
      assert.ok(open <= 1, "two jobs ran at once");
    }
  });

  test("stop() sends SIGTERM once to the running job, waits for its cleanup and fires nothing more", async () => {
    const logFile = path.join(mkdtempSync(path.join(os.tmpdir(), "composure-scheduler-")), "events.jsonl");
    const runs: JobRun[] = [];
    const scheduler = new Scheduler({ jobs: [job("backup-medium")], start: fakeStart(logFile, 30), health: (_line, run) => runs.push(run) });
    scheduler.start();
    await until(() => events(logFile).some((event) => event.what === "start"));
    const stopping = performance.now();
    await scheduler.stop("SIGTERM");
    assert.ok(performance.now() - stopping < 5000);
    assert.deepEqual(events(logFile).map((event) => event.what), ["start", "released"]);
    assert.equal(runs.length, 1);
    assert.equal(runs[0].interrupted, true);
    assert.equal(runs[0].exitCode, 0);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    assert.equal(events(logFile).length, 2, "no run after stop");
    assert.ok(!scheduler.isBusy());
  });

  test("the health line says which job, how it ended, how long it took and when it runs next", () => {
    const run: JobRun = { job: job("backup-critical"), startedAt: new Date("2026-11-01T02:00:00Z"), finishedAt: new Date("2026-11-01T02:00:12.5Z"), exitCode: 1, interrupted: false };
    assert.equal(
      healthLine(run, new Date("2026-11-02T02:00:00Z")),
      "composure-schedule 2026-11-01T02:00:12.500Z job=backup-critical result=failed exit=1 started=2026-11-01T02:00:00.000Z duration_s=12.5 next=2026-11-02T02:00:00.000Z",
    );
  });
});

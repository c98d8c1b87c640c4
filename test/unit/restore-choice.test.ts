// The run and service choice of an interactive make restore, on a real catalog, answers typed in order.
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, test } from "node:test";
import { writeManifest, type Manifest, type ServiceRecord } from "../../scripts/lib/catalog/manifest.ts";
import { recordVerified } from "../../scripts/lib/catalog/run-marks.ts";
import { createRunDir } from "../../scripts/lib/catalog/runs.ts";
import { parseConfig } from "../../scripts/lib/config/load.ts";
import { chooseRestore, pickServices } from "../../scripts/lib/pipeline/restore-choice.ts";
import { verifyMark } from "../../scripts/lib/pipeline/run-list.ts";

const record = (name: string, status: "ok" | "failed" = "ok"): ServiceRecord => ({
  name, strategy: "volume", status, stopped: [], downtimeSeconds: 0, durationSeconds: 0,
  artifacts: status === "ok" ? [{ path: `${name}/data.tar.zst`, bytes: 2048, sha256: "a".repeat(64), compression: "zstd" }] : [],
});

/** Runs of project shop, oldest first, one a day; returns their ids. */
async function seed(destination: string, runs: { services: ServiceRecord[]; tags?: string[]; suffix?: string; reason?: string }[]): Promise<string[]> {
  const ids: string[] = [];
  for (const [day, run] of runs.entries()) {
    const started = new Date(Date.UTC(2026, 0, 1 + day, 2, 0, 0));
    const { runId, runDir } = await createRunDir(destination, "shop", started, run.suffix);
    const manifest: Manifest = {
      format: "composure/1", project: "shop", runId, host: "h", startedAt: started.toISOString(), finishedAt: started.toISOString(),
      outcome: run.services.some((service) => service.status === "failed") ? "partial" : "success", services: run.services, tags: run.tags, reason: run.reason,
    };
    await writeManifest(runDir, manifest);
    ids.push(runId);
  }
  return ids;
}

/** A terminal that answers the questions in order and records everything shown. */
function operator(answers: string[]) {
  const shown: string[] = [];
  const questions: string[] = [];
  const ask = async (question: string) => {
    questions.push(question);
    const answer = answers.shift();
    if (answer === undefined) throw new Error(`no answer left for: ${question}`);
    return answer;
  };
  return { shown, questions, ask, say: (line: string) => shown.push(line) };
}

describe("interactive restore choice", () => {
  const destination = mkdtempSync(path.join(os.tmpdir(), "composure-choice-"));
  const config = parseConfig({ destination }, ["volume"]);
  let ids: string[] = [];

  test("the table lists the runs newest first with time, services, size, verify result and tags", async () => {
    ids = await seed(destination, [
      { services: [record("db"), record("app")], tags: ["pre-upgrade"] },
      { services: [record("db"), record("app", "failed")] },
      { services: [record("db"), record("app")] },
      { services: [record("db")], suffix: "-rescue", reason: "rescue copy taken before restoring run x" },
    ]);
    await recordVerified(path.join(destination, "shop", ids[0]), { db: true, app: true });
    await recordVerified(path.join(destination, "shop", ids[1]), { db: false });
    const terminal = operator(["", ""]);
    await chooseRestore(config, "shop", terminal);
    assert.equal(terminal.shown[0], "complete runs of project shop, newest first:");
    const table = terminal.shown.slice(1, 6);
    assert.match(table[0], /#\s+RUN\s+STARTED\s+SERVICES\s+SIZE\s+VERIFIED\s+TAGS\s+NOTE/);
    assert.match(table[1], new RegExp(`^\\s+1\\s+${ids[3]}\\s.*rescue copy taken before restoring run x`));
    assert.match(table[2], new RegExp(`^\\s+2\\s+${ids[2]}\\s+2026-01-03T02:00:00.000Z\\s+db,app\\s+4.0 KiB\\s+-\\s+-`));
    assert.match(table[3], new RegExp(`^\\s+3\\s+${ids[1]}\\s.*db,app\\(failed\\)\\s+2.0 KiB\\s+failed: db\\s+-`));
    assert.match(table[4], new RegExp(`^\\s+4\\s+${ids[0]}\\s.*\\s+ok\\s+pre-upgrade`));
  });

  test("Enter takes the newest run that is not a rescue copy, and all its services", async () => {
    const terminal = operator(["", ""]);
    assert.deepEqual(await chooseRestore(config, "shop", terminal), { run: ids[2], services: undefined });
    assert.equal(terminal.questions[0], "Run to restore (number or run id) [2]: ");
  });

  test("a number picks that run, and numbers or names pick some of its services", async () => {
    assert.deepEqual(await chooseRestore(config, "shop", operator(["4", "2"])), { run: ids[0], services: ["app"] });
    assert.deepEqual(await chooseRestore(config, "shop", operator([ids[0], "app, 1"])), { run: ids[0], services: undefined }, "both services are all of them");
  });

  test("a wrong answer is explained and asked again", async () => {
    const terminal = operator(["9", "20250101T000000Z", "4", "3", "db"]);
    assert.deepEqual(await chooseRestore(config, "shop", terminal), { run: ids[0], services: ["db"] });
    assert.ok(terminal.shown.includes("no run 9: answer a number from 1 to 4, or a run id"));
    assert.ok(terminal.shown.some((line) => line.startsWith("no run 20250101T000000Z among those listed")));
    assert.ok(terminal.shown.some((line) => line.startsWith("no service 3: answer numbers from 1 to 2")));
  });

  test("a run with one restorable service, or SERVICE=, asks for the run only", async () => {
    const single = operator(["3"]);
    assert.deepEqual(await chooseRestore(config, "shop", single), { run: ids[1] });
    assert.equal(single.questions.length, 1);
    const named = operator([""]);
    assert.deepEqual(await chooseRestore(config, "shop", { ...named, service: "app" }), { run: ids[2], services: ["app"] });
    assert.equal(named.shown.filter((line) => line.includes(ids[1])).length, 0, "the run whose app backup failed is not offered for SERVICE=app");
  });

  test("a project without complete runs is a usage error", async () => {
    await assert.rejects(chooseRestore(config, "empty", operator([])), /no complete run of project empty/);
  });

  test("services answers keep the run's order and name each once", () => {
    assert.deepEqual(pickServices("3 1,1", ["db", "app", "web"]), ["db", "web"]);
    assert.throws(() => pickServices("cache", ["db"]), /no service cache/);
  });

  test("the verify mark says never, failed, all or only some", () => {
    const manifest = { services: [record("db"), record("app"), record("web", "failed")] } as Manifest;
    assert.equal(verifyMark(manifest, {}), "-");
    assert.equal(verifyMark(manifest, { db: true, app: false }), "failed: app");
    assert.equal(verifyMark(manifest, { db: true, app: true }), "ok");
    assert.equal(verifyMark(manifest, { db: true }), "ok: db");
  });
});

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, test } from "node:test";
import { writeManifest, type Manifest } from "../../scripts/lib/catalog/manifest.ts";
import { createRunDir } from "../../scripts/lib/catalog/runs.ts";
import { parseConfig } from "../../scripts/lib/config/load.ts";
import { pruneLocal, startOfRunId } from "../../scripts/lib/pipeline/prune.ts";

const kinds = ["volume"];

async function seed(destination: string, days: number, services: { name: string; tier: "critical" | "medium" | "low" }[]): Promise<string[]> {
  const ids: string[] = [];
  for (let day = 0; day < days; day++) {
    const started = new Date(Date.UTC(2026, 0, 1 + day, 2, 0, 0));
    const { runId, runDir } = await createRunDir(destination, "shop", started);
    const manifest: Manifest = {
      format: "composure/1", project: "shop", runId, host: "h", startedAt: started.toISOString(), finishedAt: started.toISOString(), outcome: "success",
      services: services.map((service) => ({ ...service, strategy: "volume", status: "ok" as const, stopped: [], downtimeSeconds: 0, durationSeconds: 0, artifacts: [] })),
    };
    await writeManifest(runDir, manifest);
    ids.push(runId);
  }
  return ids;
}

describe("prune", () => {
  test("run ids give back the time they were started", () => {
    assert.equal(startOfRunId("20260102T030405Z-rescue").toISOString(), "2026-01-02T03:04:05.000Z");
  });

  test("keeps the daily runs the policy names, deletes the rest, and leaves incomplete recent runs", async () => {
    const destination = mkdtempSync(path.join(os.tmpdir(), "composure-prune-"));
    const ids = await seed(destination, 10, [{ name: "db", tier: "medium" }]);
    const fresh = await createRunDir(destination, "shop", new Date(Date.UTC(2026, 0, 10, 23, 0, 0)));
    const config = parseConfig({ destination, retention: { local: { keep_daily: 3 } } }, kinds);
    const now = new Date(Date.UTC(2026, 0, 11, 0, 0, 0));
    const decisions = await pruneLocal(config, "shop", false, now);
    const kept = decisions.filter((decision) => decision.keep).map((decision) => decision.id).sort();
    assert.deepEqual(kept, [...ids.slice(-3), fresh.runId].sort());
    for (const id of ids.slice(0, 7)) assert.ok(!existsSync(path.join(destination, "shop", id)), `${id} should be gone`);
    for (const id of kept) assert.ok(existsSync(path.join(destination, "shop", id)));
  });

  test("a tier's own policy keeps more of the runs that hold its services", async () => {
    const destination = mkdtempSync(path.join(os.tmpdir(), "composure-prune-"));
    const ids = await seed(destination, 6, [{ name: "db", tier: "critical" }, { name: "cache", tier: "low" }]);
    const config = parseConfig({ destination, retention: { local: { keep_last: 1 }, tiers: { critical: { local: { keep_last: 4 } } } } }, kinds);
    const decisions = await pruneLocal(config, "shop", true, new Date(Date.UTC(2026, 1, 1)));
    assert.deepEqual(decisions.filter((decision) => decision.keep).map((decision) => decision.id), ids.slice(-4).reverse());
    assert.ok(decisions[0].reasons.some((reason) => reason.startsWith("critical: ")));
    for (const id of ids) assert.ok(existsSync(path.join(destination, "shop", id)), "a dry run deletes nothing");
  });

  test("make prune DRY_RUN=1 prints every run with keep or delete and the rule behind it", async () => {
    const destination = mkdtempSync(path.join(os.tmpdir(), "composure-prune-"));
    const ids = await seed(destination, 3, [{ name: "db", tier: "medium" }]);
    const config = path.join(destination, "composure.yml");
    writeFileSync(config, "retention:\n  local: { keep_last: 1 }\n");
    const result = spawnSync(process.execPath, ["--import", "tsx", "scripts/prune.ts"], {
      cwd: path.resolve(import.meta.dirname, "../.."),
      env: { ...process.env, CONFIG: config, PROJECT: "shop", DESTINATION: destination, DRY_RUN: "1" },
      encoding: "utf8",
    });
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, new RegExp(`${ids[2]} keep .*last 1 of`));
    assert.match(result.stdout, new RegExp(`${ids[0]} would delete`));
    for (const id of ids) assert.ok(existsSync(path.join(destination, "shop", id)));
  });
});

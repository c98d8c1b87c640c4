import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, test } from "node:test";
import { readManifest, writeManifest, type Manifest } from "../../scripts/lib/catalog/manifest.ts";
import { recordVerified } from "../../scripts/lib/catalog/run-marks.ts";
import { createRunDir } from "../../scripts/lib/catalog/runs.ts";
import { parseConfig } from "../../scripts/lib/config/load.ts";
import { acceptSuspicions, pendingSuspicions } from "../../scripts/lib/pipeline/accept.ts";
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
    const config = parseConfig({ destination, retention: { local: { keep_daily: 3 }, require_verified: false } }, kinds);
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
    const config = parseConfig({ destination, retention: { local: { keep_last: 1 }, tiers: { critical: { local: { keep_last: 4 } } }, require_verified: false } }, kinds);
    const decisions = await pruneLocal(config, "shop", true, new Date(Date.UTC(2026, 1, 1)));
    assert.deepEqual(decisions.filter((decision) => decision.keep).map((decision) => decision.id), ids.slice(-4).reverse());
    assert.ok(decisions[0].reasons.some((reason) => reason.startsWith("critical: ")));
    for (const id of ids) assert.ok(existsSync(path.join(destination, "shop", id)), "a dry run deletes nothing");
  });

  test("make prune DRY_RUN=1 prints every run with keep or delete and the rule behind it", async () => {
    const destination = mkdtempSync(path.join(os.tmpdir(), "composure-prune-"));
    const ids = await seed(destination, 3, [{ name: "db", tier: "medium" }]);
    const config = path.join(destination, "composure.yml");
    writeFileSync(config, "retention:\n  local: { keep_last: 1 }\n  require_verified: false\n");
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

  test("retention.require_verified (the default): a run goes only once a newer run of its services passed make verify", async () => {
    const destination = mkdtempSync(path.join(os.tmpdir(), "composure-prune-"));
    const ids = await seed(destination, 3, [{ name: "db", tier: "medium" }]);
    const config = parseConfig({ destination, retention: { local: { keep_last: 1 } } }, kinds);
    const now = new Date(Date.UTC(2026, 1, 1));
    const waiting = await pruneLocal(config, "shop", true, now);
    assert.deepEqual(waiting.filter((decision) => decision.keep).length, 3);
    assert.match(waiting[1].reasons.join(), /no newer run of db has passed make verify yet/);
    await recordVerified(path.join(destination, "shop", ids[1]), { db: true });
    const decisions = await pruneLocal(config, "shop", false, now);
    assert.deepEqual(decisions.filter((decision) => decision.keep).map((decision) => decision.id), [ids[2], ids[1]]);
    assert.ok(!existsSync(path.join(destination, "shop", ids[0])));
  });

  test("a suspect run keeps the run before it until make accept; the acceptance is a file beside the sealed run", async () => {
    const destination = mkdtempSync(path.join(os.tmpdir(), "composure-prune-"));
    const ids = await seed(destination, 3, [{ name: "db", tier: "medium" }]);
    const suspectDir = path.join(destination, "shop", ids[2]);
    const manifest = await readManifest(suspectDir, "shop");
    manifest.services[0].suspect = [{ what: "shop.orders", unit: "rows", was: 230_114, now: 12 }];
    await writeManifest(suspectDir, manifest);
    const config = parseConfig({ destination, retention: { local: { keep_last: 1 }, require_verified: false } }, kinds);
    const now = new Date(Date.UTC(2026, 1, 1));
    const guarded = await pruneLocal(config, "shop", true, now);
    assert.deepEqual(guarded.filter((decision) => decision.keep).map((decision) => decision.id), [ids[2], ids[1]]);
    assert.match(guarded[1].reasons.join(), /last good run before suspected loss on shop\.orders/);
    await assert.rejects(acceptSuspicions(config, "shop", undefined, undefined), /say which suspected loss to accept.*shop\.orders: 230,114 -> 12 rows/);
    await assert.rejects(acceptSuspicions(config, "shop", ids[1], undefined), /nothing to accept in project shop for RUN=/);
    assert.equal((await acceptSuspicions(config, "shop", undefined, "db")).length, 1);
    assert.deepEqual(await pendingSuspicions(destination, "shop"), []);
    assert.deepEqual(await readManifest(suspectDir, "shop"), manifest, "the sealed manifest is unchanged");
    const accepted = await pruneLocal(config, "shop", true, now);
    assert.deepEqual(accepted.filter((decision) => decision.keep).map((decision) => decision.id), [ids[2]]);
  });
});

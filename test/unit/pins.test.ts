// Tags, notes and pins: manifests of older versions still parse, TAG= and NOTE= are checked, a
// pin (make pin, or a tag of retention.pin_tags) keeps a run whatever the policy says.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { manifestSchema, parseNote, parseTagList, writeManifest, type Manifest } from "../../scripts/lib/catalog/manifest.ts";
import { pinFile, pinReasons, readPin, removePin, writePin } from "../../scripts/lib/catalog/pins.ts";
import { decideRetention, REASON_PINNED } from "../../scripts/lib/catalog/retention.ts";
import { createRunDir } from "../../scripts/lib/catalog/runs.ts";
import { parseConfig } from "../../scripts/lib/config/load.ts";
import { UsageError } from "../../scripts/lib/errors.ts";
import { pruneLocal } from "../../scripts/lib/pipeline/prune.ts";

const base = { format: "composure/1", project: "shop", runId: "20260101T020000Z", host: "h", startedAt: "2026-01-01T02:00:00.000Z", finishedAt: "2026-01-01T02:00:01.000Z", outcome: "success", services: [] };

test("tags and a note are optional manifest fields: older manifests parse, bad ones are refused", () => {
  assert.ok(manifestSchema.safeParse(base).success, "a manifest without tags or note");
  assert.deepEqual(manifestSchema.parse({ ...base, tags: ["pre-upgrade"], note: "before 2.0" }).tags, ["pre-upgrade"]);
  assert.ok(!manifestSchema.safeParse({ ...base, tags: ["no spaces"] }).success);
  assert.ok(!manifestSchema.safeParse({ ...base, note: "two\nlines" }).success);
});

test("TAG= is a comma-separated list of words, NOTE= one printable line", () => {
  assert.deepEqual(parseTagList(" pre-upgrade, v2.0 ,pre-upgrade"), ["pre-upgrade", "v2.0"]);
  assert.deepEqual(parseTagList(undefined), []);
  assert.throws(() => parseTagList("ok,$(touch x)"), (error: Error) => error instanceof UsageError && /"\$\(touch x\)" is not a tag/.test(error.message));
  assert.equal(parseNote("  before 2.0 "), "before 2.0");
  assert.equal(parseNote(""), undefined);
  assert.throws(() => parseNote("a\u0007b"), UsageError);
});

test("a pin is a small file beside the run, written whole, and can be removed", async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "composure-pin-"));
  await writePin(dir, new Date("2026-02-03T04:05:06Z"));
  assert.equal((await readPin(dir))?.pinnedAt, "2026-02-03T04:05:06.000Z");
  assert.equal(statSync(path.join(dir, pinFile)).mode & 0o777, 0o600);
  assert.deepEqual(readdirSync(dir), [pinFile], "no temporary file left");
  assert.deepEqual(pinReasons(dir, { tags: ["pre-upgrade", "x"] }, ["pre-upgrade"]), ["make pin", "tag pre-upgrade"]);
  await removePin(dir);
  assert.deepEqual(pinReasons(dir, { tags: ["x"] }, ["pre-upgrade"]), []);
});

test("retention keeps a pinned run with the reason pinned, whatever the rules say", () => {
  const runs = [0, 1, 2].map((day) => ({ id: `r${day}`, startedAt: new Date(Date.UTC(2026, 0, 1 + day)), complete: true, services: ["db"], pinned: day === 0 }));
  const decisions = decideRetention(runs, { keep_last: 1 }, new Date(Date.UTC(2026, 1, 1)));
  assert.deepEqual(decisions.map((decision) => [decision.id, decision.keep]), [["r2", true], ["r1", false], ["r0", true]]);
  assert.deepEqual(decisions.find((decision) => decision.id === "r0")?.reasons, [REASON_PINNED]);
});

test("make prune keeps runs pinned by make pin and by retention.pin_tags", async () => {
  const destination = mkdtempSync(path.join(os.tmpdir(), "composure-prune-pins-"));
  const ids: string[] = [];
  for (let day = 0; day < 4; day++) {
    const started = new Date(Date.UTC(2026, 0, 1 + day, 2));
    const { runId, runDir } = await createRunDir(destination, "shop", started);
    const manifest: Manifest = { ...(base as Manifest), runId, startedAt: started.toISOString(), ...(day === 1 ? { tags: ["pre-upgrade"] } : {}), services: [{ name: "db", strategy: "volume", tier: "medium", status: "ok", stopped: [], downtimeSeconds: 0, durationSeconds: 0, artifacts: [] }] };
    await writeManifest(runDir, manifest);
    if (day === 0) await writePin(runDir);
    ids.push(runId);
  }
  const config = parseConfig({ destination, retention: { local: { keep_last: 1 }, pin_tags: ["pre-upgrade"], require_verified: false } }, ["volume"]);
  const decisions = await pruneLocal(config, "shop", false, new Date(Date.UTC(2026, 1, 1)));
  const kept = decisions.filter((decision) => decision.keep).map((decision) => decision.id).sort();
  assert.deepEqual(kept, [ids[0], ids[1], ids[3]]);
  assert.ok(decisions.find((decision) => decision.id === ids[0])?.reasons.includes("medium: pinned"));
  assert.ok(!existsSync(path.join(destination, "shop", ids[2])));
});

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, test } from "node:test";
import { register } from "prom-client";
import { parseConfig } from "../../scripts/lib/config/load.ts";
import { buildRegistry, metricNames, renderRegistry } from "../../scripts/lib/metrics/registry.ts";
import { updateStatus } from "../../scripts/lib/metrics/status.ts";
import { checksFromFindings, deriveProjectState, recordInvocation, textfilePath, writeProjectMetrics } from "../../scripts/lib/metrics/textfile.ts";
import { recordAccepted } from "../../scripts/lib/catalog/run-marks.ts";
import { parseExposition, valueOf } from "../support/metrics.ts";

const sha = "0".repeat(64);

interface Service {
  name: string;
  ok: boolean;
  bytes?: number;
  downtime?: number;
  duration?: number;
}

/** A run folder with a manifest, as a backup leaves it. */
function writeRun(destination: string, project: string, runId: string, finishedAt: string, services: Service[], sealed = true): void {
  const dir = path.join(destination, project, runId);
  mkdirSync(dir, { recursive: true });
  if (!sealed) return;
  const manifest = {
    format: "composure/1",
    project,
    runId,
    host: "test",
    startedAt: finishedAt,
    finishedAt,
    outcome: services.every((service) => service.ok) ? "success" : services.some((service) => service.ok) ? "partial" : "failed",
    services: services.map((service) => ({
      name: service.name,
      strategy: "volume",
      status: service.ok ? "ok" : "failed",
      ...(service.ok ? {} : { error: "pre hook failed" }),
      stopped: [],
      downtimeSeconds: service.downtime ?? 1.5,
      durationSeconds: service.duration ?? 2.5,
      artifacts: service.ok ? [{ path: `${service.name}/data.tar.zst`, bytes: service.bytes ?? 100, sha256: sha, compression: "zstd" }] : [],
    })),
  };
  writeFileSync(path.join(dir, "manifest.json"), JSON.stringify(manifest));
}

function setup() {
  const root = mkdtempSync(path.join(os.tmpdir(), "composure-metrics-unit-"));
  const config = parseConfig({ services: { db: { tier: "critical" }, old: { exclude: true } } }, ["volume"]);
  config.destination = path.join(root, "backups");
  config.metrics.textfile_dir = path.join(root, "textfile");
  return { root, config };
}

const at = (iso: string) => Date.parse(iso) / 1000;

describe("metrics textfile", () => {
  test("each service's series come from its newest manifests: a failed run keeps the last success", async () => {
    const { config } = setup();
    writeRun(config.destination, "shop", "20261101T020000Z", "2026-11-01T02:00:10Z", [{ name: "db", ok: true, bytes: 1000 }, { name: "web", ok: true, bytes: 50 }]);
    writeRun(config.destination, "shop", "20261102T020000Z", "2026-11-02T02:00:10Z", [{ name: "db", ok: true, bytes: 2000, downtime: 3 }, { name: "web", ok: false }]);
    writeRun(config.destination, "shop", "20261103T020000Z", "2026-11-03T02:00:10Z", [{ name: "db", ok: false, downtime: 0, duration: 0.2 }]);
    writeRun(config.destination, "shop", "20261104T020000Z", "2026-11-04T02:00:10Z", [{ name: "db", ok: true, bytes: 9 }], false); // incomplete: ignored
    writeRun(config.destination, "shop", "20261105T020000Z-rescue", "2026-11-05T02:00:10Z", [{ name: "db", ok: true, bytes: 7 }]); // rescue copy: ignored
    const file = await writeProjectMetrics(config, "shop");
    assert.equal(file, textfilePath(config.metrics.textfile_dir, "shop"));
    assert.equal(path.basename(file), "composure-shop.prom");
    const samples = parseExposition(readFileSync(file, "utf8"));
    const db = { project: "shop", service: "db", tier: "critical" };
    const web = { project: "shop", service: "web", tier: "medium" };
    assert.equal(valueOf(samples, "composure_last_success_timestamp_seconds", db), at("2026-11-02T02:00:10Z"));
    assert.equal(valueOf(samples, "composure_last_run_timestamp_seconds", db), at("2026-11-03T02:00:10Z"));
    assert.equal(valueOf(samples, "composure_last_run_success", db), 0);
    assert.equal(valueOf(samples, "composure_last_run_duration_seconds", db), 0.2);
    assert.equal(valueOf(samples, "composure_last_downtime_seconds", db), 0);
    assert.equal(valueOf(samples, "composure_last_archive_bytes", db), 2000);
    assert.equal(valueOf(samples, "composure_last_added_bytes", db), 2000, "an archive adds its whole size");
    assert.equal(valueOf(samples, "composure_repository_bytes", { project: "shop" }), undefined, "no repository, no series");
    assert.equal(valueOf(samples, "composure_backups", { ...db, location: "local" }), 2);
    assert.equal(valueOf(samples, "composure_last_success_timestamp_seconds", web), at("2026-11-01T02:00:10Z"));
    assert.equal(valueOf(samples, "composure_last_run_success", web), 0);
    assert.equal(valueOf(samples, "composure_backups", { ...web, location: "local" }), 1);
    assert.equal(valueOf(samples, "composure_last_restore_drill_success", db), undefined);
    assert.deepEqual(readdirSync(config.metrics.textfile_dir), ["composure-shop.prom"], "written by rename, no temporary file left");
  });

  test("a service that never succeeded has run series but no last-success timestamp", async () => {
    const { config } = setup();
    writeRun(config.destination, "shop", "20261101T020000Z", "2026-11-01T02:00:10Z", [{ name: "db", ok: false }]);
    const samples = parseExposition(readFileSync(await writeProjectMetrics(config, "shop"), "utf8"));
    assert.equal(valueOf(samples, "composure_last_success_timestamp_seconds", { service: "db" }), undefined);
    assert.equal(valueOf(samples, "composure_last_run_success", { service: "db" }), 0);
    assert.equal(valueOf(samples, "composure_backups", { service: "db", location: "local" }), 0);
  });

  test("tiers come from the last plan, then the config, then default to medium; excluded services are left out", () => {
    const { config } = setup();
    const runs = [
      { manifest: { format: "composure/1" as const, project: "shop", runId: "20261101T020000Z", host: "h", startedAt: "2026-11-01T02:00:00Z", finishedAt: "2026-11-01T02:00:10Z", outcome: "success" as const, services: ["db", "web", "cache", "old", "gone"].map((name) => ({ name, strategy: "volume", status: "ok" as const, stopped: [], downtimeSeconds: 0, durationSeconds: 1, artifacts: [] })) } },
    ];
    const status = { format: "composure-status/1" as const, services: { cache: { tier: "low" as const, excluded: false }, gone: { tier: "medium" as const, excluded: true } }, checks: { verify: {}, restore_drill: {} }, invocations: {} };
    const state = deriveProjectState("shop", runs, status, config);
    assert.deepEqual(
      Object.fromEntries(state.services.map((entry) => [entry.service, entry.tier])),
      { db: "critical", web: "medium", cache: "low" },
    );
  });

  test("the invocation's outcome and verify and restore-drill results are recorded and survive a rewrite", async () => {
    const { config } = setup();
    writeRun(config.destination, "shop", "20261101T020000Z", "2026-11-01T02:00:10Z", [{ name: "db", ok: true }, { name: "web", ok: true }]);
    await recordInvocation(config, "shop", { command: "backup", ok: false, planned: [{ name: "db", tier: "low", excluded: false }] });
    const findings = [
      { run: "20261101T020000Z", service: "db", ok: true },
      { run: "20261101T020000Z", service: "web", ok: true },
      { run: "20261101T020000Z", service: "web", ok: false },
      { run: "20261101T020000Z", ok: false },
    ];
    await recordInvocation(config, "shop", { command: "verify", ok: false, checks: { kind: "verify", results: checksFromFindings(findings, "2026-11-02T00:00:00Z") } });
    await updateStatus(config.destination, "shop", (status) => {
      status.checks.restore_drill.db = { ok: true, at: "2026-11-03T00:00:00Z" };
    });
    const samples = parseExposition(readFileSync(await writeProjectMetrics(config, "shop"), "utf8"));
    const db = { project: "shop", service: "db", tier: "low" };
    assert.equal(valueOf(samples, "composure_last_invocation_success", { project: "shop", command: "backup" }), 0);
    assert.equal(valueOf(samples, "composure_last_invocation_success", { project: "shop", command: "verify" }), 0);
    assert.ok(valueOf(samples, "composure_last_invocation_timestamp_seconds", { command: "backup" })! > 0);
    assert.equal(valueOf(samples, "composure_last_verify_success", db), 1);
    assert.equal(valueOf(samples, "composure_last_verify_success", { service: "web" }), 0);
    assert.equal(valueOf(samples, "composure_last_verify_timestamp_seconds", db), at("2026-11-02T00:00:00Z"));
    assert.equal(valueOf(samples, "composure_last_restore_drill_success", db), 1);
    assert.equal(valueOf(samples, "composure_last_restore_drill_timestamp_seconds", db), at("2026-11-03T00:00:00Z"));
    assert.equal(valueOf(samples, "composure_backups", { ...db, location: "local" }), 1);
    assert.equal(valueOf(samples, "composure_last_upload_success", { project: "shop" }), undefined, "no remote in use");
  });

  test("the last off-site copy is the newest upload.json of any run: a later sync can clear a failure", async () => {
    const { config } = setup();
    const upload = (runId: string, state: "uploaded" | "failed", at: string) =>
      writeFileSync(path.join(config.destination, "shop", runId, "upload.json"), JSON.stringify({ state, at, remote: "rclone offsite:x" }));
    writeRun(config.destination, "shop", "20261101T020000Z", "2026-11-01T02:00:10Z", [{ name: "db", ok: true }]);
    writeRun(config.destination, "shop", "20261102T020000Z", "2026-11-02T02:00:10Z", [{ name: "db", ok: true }]);
    upload("20261101T020000Z", "uploaded", "2026-11-01T02:01:00Z");
    upload("20261102T020000Z", "failed", "2026-11-02T02:01:00Z");
    let samples = parseExposition(readFileSync(await writeProjectMetrics(config, "shop"), "utf8"));
    assert.equal(valueOf(samples, "composure_last_upload_success", { project: "shop", location: "remote" }), 0);
    assert.equal(valueOf(samples, "composure_last_upload_timestamp_seconds", { project: "shop", location: "remote" }), at("2026-11-02T02:01:00Z"));
    upload("20261102T020000Z", "uploaded", "2026-11-03T05:00:00Z"); // make sync
    samples = parseExposition(readFileSync(await writeProjectMetrics(config, "shop"), "utf8"));
    assert.equal(valueOf(samples, "composure_last_upload_success", { project: "shop", location: "remote" }), 1);
  });

  test("an unreadable manifest is skipped, not fatal", async () => {
    const { config } = setup();
    writeRun(config.destination, "shop", "20261101T020000Z", "2026-11-01T02:00:10Z", [{ name: "db", ok: true }]);
    mkdirSync(path.join(config.destination, "shop", "20261102T020000Z"));
    writeFileSync(path.join(config.destination, "shop", "20261102T020000Z", "manifest.json"), "{ not json");
    const samples = parseExposition(readFileSync(await writeProjectMetrics(config, "shop"), "utf8"));
    assert.equal(valueOf(samples, "composure_last_success_timestamp_seconds", { service: "db" }), at("2026-11-01T02:00:10Z"));
  });

  test("a dedicated registry: nothing lands in prom-client's global one, and promtool accepts the file", async () => {
    const registry = buildRegistry({
      project: "shop",
      services: [{ service: "db", tier: "critical", localBackups: 1, lastRun: { at: 1, ok: true, durationSeconds: 1, downtimeSeconds: 1 }, lastSuccess: { at: 1, bytes: 1, addedBytes: 1 } }],
      uploads: {},
      invocations: { backup: { ok: true, at: "2026-11-01T00:00:00Z" } },
    });
    for (const name of metricNames) assert.equal(register.getSingleMetric(name), undefined, name);
    const text = await renderRegistry(registry);
    assert.doesNotMatch(text, /composure_last_verify_success/, "families without samples are left out");
    const check = spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8" });
    assert.ifError(check.error);
    assert.equal(check.status, 0, check.stdout + check.stderr);
  });

  test("every series name starts with composure_ and is documented in the README", () => {
    const readme = readFileSync(path.resolve(import.meta.dirname, "../../README.md"), "utf8");
    for (const name of metricNames) {
      assert.match(name, /^composure_[a-z_]+$/);
      assert.ok(readme.includes(name), `README mentions ${name}`);
    }
  });

  test("a suspect newest backup: composure_last_backup_suspect 1 and the largest drop, until make accept", async () => {
    const { config } = setup();
    writeRun(config.destination, "shop", "20260101T020000Z", "2026-01-01T02:00:10Z", [{ name: "db", ok: true }]);
    const manifestFile = path.join(config.destination, "shop", "20260101T020000Z", "manifest.json");
    const manifest = JSON.parse(readFileSync(manifestFile, "utf8"));
    Object.assign(manifest.services[0], { trend: { baseline: "20251231T020000Z", largestDrop: 0.9 }, suspect: [{ what: "shop.orders", unit: "rows", was: 10, now: 1 }] });
    writeFileSync(manifestFile, JSON.stringify(manifest));
    const labels = { project: "shop", service: "db", tier: "critical" };
    const read = async () => parseExposition(readFileSync(await writeProjectMetrics(config, "shop"), "utf8"));
    assert.equal(valueOf(await read(), "composure_last_backup_suspect", labels), 1);
    assert.equal(valueOf(await read(), "composure_last_backup_largest_drop_ratio", labels), 0.9);
    await recordAccepted(path.dirname(manifestFile), ["db"]);
    assert.equal(valueOf(await read(), "composure_last_backup_suspect", labels), 0);
  });
});

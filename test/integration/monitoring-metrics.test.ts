// Acceptance of the node_exporter textfile: after a real backup a real node_exporter serves
// composure's series without a scrape error; a failed backup (a pre hook that exits 1) leaves
// the last-success timestamp where it was and sets last_run_success to 0; verify and
// `make metrics` write the same file from the catalog.
import assert from "node:assert/strict";
import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { ComposeProject, composure, requireDocker, tempDir } from "../support/composure.ts";
import { startNodeExporter, valueOf, type NodeExporter, type Sample } from "../support/metrics.ts";

const project = new ComposeProject(
  `cmpt-mon${process.pid}`,
  `
version: "3.8"
services:
  db:
    image: $BUSYBOX
    init: true
    command: ["sleep", "100000"]
    volumes: ["data:/data"]
    labels: { composure.tier: critical }
  web:
    image: $BUSYBOX
    init: true
    command: ["sleep", "100000"]
    volumes: ["site:/site"]
volumes: { data: {}, site: {} }
`,
);
const destination = tempDir("monitoring-dest");
const metricsDir = tempDir("monitoring-textfile");
const env = { PROJECT: project.name, DESTINATION: destination, METRICS_DIR: metricsDir };
const textfile = path.join(metricsDir, `composure-${project.name}.prom`);

function manifests(): { runId: string; finishedAt: string; services: { name: string; status: string; artifacts: { bytes: number }[] }[] }[] {
  const dir = path.join(destination, project.name);
  return readdirSync(dir)
    .filter((name) => /^\d{8}T/.test(name) && existsSync(path.join(dir, name, "manifest.json")))
    .sort()
    .map((name) => JSON.parse(readFileSync(path.join(dir, name, "manifest.json"), "utf8")));
}

describe("metrics in a node_exporter textfile", { timeout: 600_000 }, () => {
  let exporter: NodeExporter;
  const labels = (service: string, tier: string) => ({ project: project.name, service, tier });

  before(async () => {
    await requireDocker();
    await project.up();
    exporter = await startNodeExporter(metricsDir);
  });
  after(async () => {
    await exporter?.stop();
    await project.down().catch(() => undefined);
  });

  test("after a successful backup node_exporter serves composure's series with no scrape error", async () => {
    const outcome = await composure("backup", env);
    assert.equal(outcome.code, 0, outcome.stderr);
    assert.ok(existsSync(textfile), `${textfile} written`);
    assert.deepEqual(readdirSync(metricsDir).filter((name) => name.includes(".tmp")), [], "no temporary file left behind");
    const [run] = manifests();
    const finished = Date.parse(run.finishedAt) / 1000;
    const samples: Sample[] = await exporter.scrape();
    assert.equal(valueOf(samples, "node_textfile_scrape_error"), 0);
    assert.ok(valueOf(samples, "node_textfile_mtime_seconds", { file: path.basename(textfile) }) ?? valueOf(samples, "node_textfile_mtime_seconds", { file: textfile }));
    for (const [service, tier] of [["db", "critical"], ["web", "medium"]]) {
      const record = run.services.find((entry) => entry.name === service)!;
      assert.equal(valueOf(samples, "composure_last_success_timestamp_seconds", labels(service, tier)), finished, service);
      assert.equal(valueOf(samples, "composure_last_run_timestamp_seconds", labels(service, tier)), finished, service);
      assert.equal(valueOf(samples, "composure_last_run_success", labels(service, tier)), 1, service);
      assert.equal(valueOf(samples, "composure_backups", { ...labels(service, tier), location: "local" }), 1, service);
      assert.equal(valueOf(samples, "composure_last_archive_bytes", labels(service, tier)), record.artifacts.reduce((sum, artifact) => sum + artifact.bytes, 0));
      assert.ok((valueOf(samples, "composure_last_run_duration_seconds", labels(service, tier)) ?? -1) > 0);
      assert.ok((valueOf(samples, "composure_last_downtime_seconds", labels(service, tier)) ?? -1) > 0, "stop mode: the service was down during its capture");
    }
    assert.equal(valueOf(samples, "composure_last_invocation_success", { project: project.name, command: "backup" }), 1);
    assert.equal(valueOf(samples, "composure_last_restore_drill_success", { project: project.name }), undefined, "no drill has run");
  });

  test("after a failed backup the last success is unchanged and last_run_success is 0", async () => {
    const before = await exporter.scrape();
    const successBefore = valueOf(before, "composure_last_success_timestamp_seconds", labels("db", "critical"));
    const config = path.join(tempDir("monitoring-config"), "composure.yml");
    writeFileSync(config, 'services:\n  db:\n    exec: { pre: ["false"] }\n');
    const outcome = await composure("backup", { ...env, CONFIG: config });
    assert.equal(outcome.code, 1, outcome.stderr);
    assert.match(outcome.stderr, /pre hook \["false"\] exited with 1/);
    const latest = manifests().at(-1)!;
    assert.equal(latest.services.find((entry) => entry.name === "db")!.status, "failed");
    const samples = await exporter.scrape();
    assert.equal(valueOf(samples, "node_textfile_scrape_error"), 0);
    assert.equal(valueOf(samples, "composure_last_success_timestamp_seconds", labels("db", "critical")), successBefore);
    assert.equal(valueOf(samples, "composure_last_run_success", labels("db", "critical")), 0);
    assert.equal(valueOf(samples, "composure_last_run_timestamp_seconds", labels("db", "critical")), Date.parse(latest.finishedAt) / 1000);
    assert.equal(valueOf(samples, "composure_backups", { ...labels("db", "critical"), location: "local" }), 1);
    // the other service of the same run was backed up
    assert.equal(valueOf(samples, "composure_last_run_success", labels("web", "medium")), 1);
    assert.equal(valueOf(samples, "composure_last_success_timestamp_seconds", labels("web", "medium")), Date.parse(latest.finishedAt) / 1000);
    assert.equal(valueOf(samples, "composure_backups", { ...labels("web", "medium"), location: "local" }), 2);
    assert.equal(valueOf(samples, "composure_last_invocation_success", { project: project.name, command: "backup" }), 0);
  });

  test("a backup that cannot start at all is recorded as a failed invocation", async () => {
    const outcome = await composure("backup", { ...env, SERVICE: "nosuchservice" });
    assert.equal(outcome.code, 2, outcome.stderr);
    const samples = await exporter.scrape();
    assert.equal(valueOf(samples, "composure_last_invocation_success", { project: project.name, command: "backup" }), 0);
    assert.equal(valueOf(samples, "composure_last_run_success", labels("web", "medium")), 1, "per-service state still comes from the catalog");
  });

  test("the outcome of the off-site copy is exported, and a failed upload shows as 0", async () => {
    const good = path.join(tempDir("monitoring-remote-config"), "composure.yml");
    writeFileSync(good, `remote: { target: "${path.join(tempDir("monitoring-remote"), "store")}" }\n`);
    const uploaded = await composure("backup", { ...env, CONFIG: good, COMPOSURE_RCLONE_BACKOFF: "0" });
    assert.equal(uploaded.code, 0, uploaded.stderr);
    let samples = await exporter.scrape();
    assert.equal(valueOf(samples, "composure_last_upload_success", { project: project.name, location: "remote" }), 1);
    const uploadedAt = valueOf(samples, "composure_last_upload_timestamp_seconds", { project: project.name, location: "remote" })!;

    const blocker = path.join(tempDir("monitoring-remote-bad"), "a-file");
    writeFileSync(blocker, "not a directory\n");
    const bad = path.join(tempDir("monitoring-remote-config"), "composure.yml");
    writeFileSync(bad, `remote: { target: "${path.join(blocker, "store")}" }\n`);
    const failed = await composure("backup", { ...env, CONFIG: bad, COMPOSURE_RCLONE_BACKOFF: "0" });
    assert.equal(failed.code, 1, failed.stderr);
    samples = await exporter.scrape();
    assert.equal(valueOf(samples, "composure_last_upload_success", { project: project.name, location: "remote" }), 0);
    assert.ok(valueOf(samples, "composure_last_upload_timestamp_seconds", { project: project.name, location: "remote" })! > uploadedAt);
    assert.equal(valueOf(samples, "composure_last_run_success", labels("web", "medium")), 1, "the local backup itself succeeded");
    assert.equal(valueOf(samples, "composure_last_invocation_success", { project: project.name, command: "backup" }), 0);
  });

  test("verify records its result per service and make metrics rebuilds the same file from the catalog", async () => {
    const outcome = await composure("verify", env);
    assert.equal(outcome.code, 0, outcome.stderr);
    const samples = await exporter.scrape();
    assert.equal(valueOf(samples, "composure_last_verify_success", labels("web", "medium")), 1);
    assert.ok(valueOf(samples, "composure_last_verify_timestamp_seconds", labels("web", "medium")));
    assert.equal(valueOf(samples, "composure_last_invocation_success", { project: project.name, command: "verify" }), 1);

    const written = readFileSync(textfile, "utf8");
    rmSync(textfile);
    const rebuilt = await composure("metrics", env);
    assert.equal(rebuilt.code, 0, rebuilt.stderr);
    assert.equal(readFileSync(textfile, "utf8"), written);
  });
});

// Acceptance of the notifications: a local HTTP server on 127.0.0.1 receives start / success /
// failure calls with the expected payloads around real backups; a webhook that never answers
// costs at most its timeout and changes neither the result nor the exit code.
import assert from "node:assert/strict";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { ComposeProject, composure, requireDocker, tempDir } from "../support/composure.ts";

const project = new ComposeProject(
  `cmpt-hook${process.pid}`,
  `
version: "3.8"
services:
  db:
    image: $BUSYBOX
    init: true
    command: ["sleep", "100000"]
    volumes: ["data:/data"]
    labels: { composure.tier: critical }
volumes: { data: {} }
`,
);
const destination = tempDir("webhooks-dest");
const env = { PROJECT: project.name, DESTINATION: destination, METRICS_DIR: tempDir("webhooks-textfile") };

interface Call {
  method: string;
  path: string;
  body: Record<string, unknown> | undefined;
  at: number;
}

function latestManifest(): { runId: string; outcome: string; startedAt: string } {
  const dir = path.join(destination, project.name);
  const newest = readdirSync(dir).filter((name) => /^\d{8}T/.test(name)).sort().at(-1)!;
  return JSON.parse(readFileSync(path.join(dir, newest, "manifest.json"), "utf8"));
}

describe("webhook notifications around real backups", { timeout: 600_000 }, () => {
  const calls: Call[] = [];
  let server: http.Server;
  let base = "";

  function writeConfig(extra: string, hooks: string): string {
    const file = path.join(tempDir("webhooks-config"), "composure.yml");
    writeFileSync(file, `${extra}notifications:\n  webhooks:\n${hooks}`);
    return file;
  }

  before(async () => {
    await requireDocker();
    server = http.createServer((request, response) => {
      let body = "";
      request.on("data", (chunk) => (body += chunk));
      request.on("end", () => {
        calls.push({ method: request.method!, path: request.url!, body: body ? JSON.parse(body) : undefined, at: Date.now() });
        if (request.url === "/hang") return; // accepts, then never answers
        response.end("OK");
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    await project.up();
  });
  after(async () => {
    server.closeAllConnections();
    server.close();
    await project.down().catch(() => undefined);
  });

  test("a successful backup posts start and success with the run's id, outcome and services; a GET ping follows success", async () => {
    calls.length = 0;
    const config = writeConfig("", `    - { url: "${base}/hook", timeout_seconds: 5 }\n    - { url: "${base}/ping/0d5f", method: GET, events: [success] }\n`);
    const outcome = await composure("backup", { ...env, CONFIG: config });
    assert.equal(outcome.code, 0, outcome.stderr);
    const manifest = latestManifest();
    const posts = calls.filter((call) => call.method === "POST");
    assert.deepEqual(posts.map((call) => call.body?.event), ["start", "success"]);
    const [start, success] = posts.map((call) => call.body!);
    assert.equal(start.project, project.name);
    assert.equal(start.runId, null);
    assert.equal(start.outcome, null);
    assert.deepEqual(start.services, [{ name: "db", tier: "critical" }]);
    assert.equal(success.project, project.name);
    assert.equal(success.runId, manifest.runId);
    assert.equal(success.outcome, "success");
    const [service] = success.services as Record<string, unknown>[];
    assert.equal(service.name, "db");
    assert.equal(service.status, "ok");
    assert.equal(service.tier, "critical");
    assert.ok((service.bytes as number) > 0);
    assert.ok(Date.parse(success.at as string) >= Date.parse(start.at as string));
    const pings = calls.filter((call) => call.method === "GET");
    assert.deepEqual(pings.map((call) => call.path), ["/ping/0d5f"]);
    assert.equal(pings[0].body, undefined);
  });

  test("a failed backup posts failure with the error, and the exit code stays 1", async () => {
    calls.length = 0;
    const config = writeConfig('services:\n  db:\n    exec: { pre: ["false"] }\n', `    - { url: "${base}/hook", events: [failure, success] }\n`);
    const outcome = await composure("backup", { ...env, CONFIG: config });
    assert.equal(outcome.code, 1, outcome.stderr);
    assert.deepEqual(calls.map((call) => call.body?.event), ["failure"]);
    const failure = calls[0].body!;
    assert.equal(failure.outcome, "failed");
    assert.equal(failure.runId, latestManifest().runId);
    const [service] = failure.services as Record<string, unknown>[];
    assert.equal(service.status, "failed");
    assert.match(service.error as string, /pre hook \["false"\] exited with 1/);
  });

  test("a backup that cannot run at all (unknown service) still reports failure", async () => {
    calls.length = 0;
    const config = writeConfig("", `    - { url: "${base}/hook" }\n`);
    const outcome = await composure("backup", { ...env, CONFIG: config, SERVICE: "nosuch" });
    assert.equal(outcome.code, 2, outcome.stderr);
    assert.deepEqual(calls.map((call) => call.body?.event), ["failure"]);
    assert.match(calls[0].body!.error as string, /has no service nosuch/);
  });

  test("a webhook that hangs delays the backup by no more than its timeout and changes nothing", async () => {
    const quietStarted = performance.now();
    const quiet = await composure("backup", env);
    const quietSeconds = (performance.now() - quietStarted) / 1000;
    assert.equal(quiet.code, 0, quiet.stderr);
    calls.length = 0;
    const timeoutSeconds = 2;
    const config = writeConfig("", `    - { url: "${base}/hang", timeout_seconds: ${timeoutSeconds} }\n    - { url: "${base}/hook" }\n`);
    const started = performance.now();
    const outcome = await composure("backup", { ...env, CONFIG: config });
    const seconds = (performance.now() - started) / 1000;
    assert.equal(outcome.code, 0, outcome.stderr);
    assert.equal(latestManifest().outcome, "success");
    assert.equal(calls.filter((call) => call.path === "/hang").length, 2, "start and success were both sent to the hanging hook");
    assert.deepEqual(calls.filter((call) => call.path === "/hook").map((call) => call.body?.event), ["start", "success"], "the other hook is not held up");
    assert.equal(outcome.stderr.match(/no complete answer within 2 s \(the backup result is not affected\)/g)?.length, 2);
    // two events (start, success), each waiting at most its timeout, on top of an ordinary backup
    // (with room for a loaded machine; without the timeout the backup would never end)
    assert.ok(seconds < quietSeconds + 2 * timeoutSeconds + 10, `the backup took ${seconds.toFixed(1)} s, ${quietSeconds.toFixed(1)} s without the hanging hook`);
    const [startHang, successHang] = calls.filter((call) => call.path === "/hang");
    const startHook = calls.find((call) => call.path === "/hook" && call.body?.event === "start")!;
    assert.ok(Math.abs(startHook.at - startHang.at) < 1000, "hooks of one event are called together");
    // the run itself began once the start notification gave up on the hanging hook: at its timeout, not later
    const runStarted = Date.parse(latestManifest().startedAt);
    assert.ok(runStarted - startHang.at >= timeoutSeconds * 1000 - 200, "the start notification waited for the hook up to its timeout");
    assert.ok(runStarted - startHang.at < timeoutSeconds * 1000 + 5000, `the run began ${runStarted - startHang.at} ms after the start notification`);
    assert.ok(successHang.at >= runStarted);
  });
});

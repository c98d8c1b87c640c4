import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { parseConfig } from "../../scripts/lib/config/load.ts";
import { notify, payloadOf, summariesOf } from "../../scripts/lib/notifications/webhooks.ts";
import { ConfigError } from "../../scripts/lib/errors.ts";

interface Received {
  method: string;
  url: string;
  body: string;
  contentType?: string;
}

describe("webhook notifications", () => {
  const received: Received[] = [];
  let server: http.Server;
  let base = "";
  before(async () => {
    server = http.createServer((request, response) => {
      let body = "";
      request.on("data", (chunk) => (body += chunk));
      request.on("end", () => {
        received.push({ method: request.method!, url: request.url!, body, contentType: request.headers["content-type"] });
        if (request.url?.startsWith("/hang")) return; // never answers
        response.statusCode = request.url?.startsWith("/broken") ? 500 : 200;
        response.end("ok");
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });

  const hooks = (document: unknown) => parseConfig({ notifications: { webhooks: document } }, ["volume"]).notifications.webhooks;

  test("POST carries the JSON payload; GET is a bare ping; each hook gets only its events", async () => {
    received.length = 0;
    const webhooks = hooks([
      { url: `${base}/json` },
      { url: `${base}/ping/abc`, method: "GET", events: ["success"] },
    ]);
    await notify(webhooks, payloadOf("start", "shop", { services: [{ name: "db", tier: "critical" }] }));
    await notify(webhooks, payloadOf("success", "shop", { runId: "20261101T020000Z", outcome: "success", services: [{ name: "db", status: "ok", bytes: 5 }] }));
    assert.equal(received.length, 3);
    const [start, success] = received.filter((entry) => entry.method === "POST").map((entry) => JSON.parse(entry.body));
    assert.equal(received.find((entry) => entry.method === "POST")!.contentType, "application/json");
    assert.deepEqual({ ...start, at: undefined, host: undefined }, { event: "start", project: "shop", runId: null, outcome: null, services: [{ name: "db", tier: "critical" }], at: undefined, host: undefined });
    assert.ok(!Number.isNaN(Date.parse(start.at)));
    assert.equal(success.event, "success");
    assert.equal(success.runId, "20261101T020000Z");
    const ping = received.find((entry) => entry.method === "GET")!;
    assert.equal(ping.url, "/ping/abc");
    assert.equal(ping.body, "");
  });

  test("a hanging endpoint is abandoned at its timeout and a failing one is only logged", async () => {
    const webhooks = hooks([
      { url: `${base}/hang`, timeout_seconds: 0.5 },
      { url: `${base}/broken`, timeout_seconds: 5 },
      { url: "http://127.0.0.1:1/refused", timeout_seconds: 5 },
    ]);
    const started = performance.now();
    await notify(webhooks, payloadOf("failure", "shop", { outcome: "failed", error: "boom" }));
    const seconds = (performance.now() - started) / 1000;
    assert.ok(seconds >= 0.45 && seconds < 4, `took ${seconds} s`);
  });

  test("webhook settings are validated with the rest of composure.yml", () => {
    assert.throws(
      () => hooks([{ url: "ftp://example/x" }, { url: `${base}/x`, events: ["finish"], timeout_seconds: 0 }]),
      (error: unknown) => error instanceof ConfigError && error.issues.length === 3,
    );
    assert.deepEqual(hooks([{ url: `${base}/x` }])[0], { url: `${base}/x`, events: ["start", "success", "failure"], method: "POST", timeout_seconds: 10 });
  });

  test("a service suspected of data loss carries its losses in the payload, one line each", () => {
    const record = { name: "db", strategy: "postgres", status: "ok" as const, stopped: [], downtimeSeconds: 0, durationSeconds: 1, artifacts: [], suspect: [{ what: "shop.orders", unit: "rows", was: 230_114, now: 12 }] };
    const manifest = { format: "composure/1" as const, project: "shop", runId: "r", host: "h", startedAt: "", finishedAt: "", outcome: "success" as const, services: [record, { ...record, name: "web", suspect: undefined }] };
    const [db, web] = summariesOf(manifest);
    assert.deepEqual(db.suspect, ["shop.orders: 230,114 -> 12 rows"]);
    assert.ok(!("suspect" in web));
  });
});


// Optional webhooks called on backup start, success and failure (`notifications.webhooks` in
// composure.yml). POST sends a JSON payload; GET is a plain ping for Healthchecks.io-style
// monitors. All hooks of an event run in parallel, each bounded by its own timeout; a failing,
// refusing or hanging endpoint is logged and never changes the backup's result or exit code.
// URLs are never logged in full: they often carry a token.
import http from "node:http";
import https from "node:https";
import os from "node:os";
import { describeLoss } from "../catalog/fact-trends.ts";
import type { Manifest } from "../catalog/manifest.ts";
import type { Webhook, WebhookEvent } from "../config/schema.ts";
import { messageOf } from "../errors.ts";
import { log } from "../log.ts";

export interface ServiceSummary {
  name: string;
  tier?: string;
  status?: "ok" | "failed";
  error?: string;
  bytes?: number;
  durationSeconds?: number;
  downtimeSeconds?: number;
  /** Suspected data loss since the service's previous good run, one line each ("shop.orders: 230,114 -> 12 rows"). */
  suspect?: string[];
}

export interface NotificationPayload {
  event: WebhookEvent;
  project: string;
  /** null at start (the run folder does not exist yet) and when the run never began. */
  runId: string | null;
  /** null at start; "failed" when the run could not take place at all (see error). */
  outcome: Manifest["outcome"] | null;
  services: ServiceSummary[];
  at: string;
  host: string;
  error?: string;
}

export function payloadOf(event: WebhookEvent, project: string, fields: Partial<Omit<NotificationPayload, "event" | "project">> = {}): NotificationPayload {
  return { event, project, runId: null, outcome: null, services: [], at: new Date().toISOString(), host: os.hostname(), ...fields };
}

export function summariesOf(manifest: Manifest, tierOf: (service: string) => string | undefined = () => undefined): ServiceSummary[] {
  return manifest.services.map((record) => ({
    name: record.name,
    tier: tierOf(record.name),
    status: record.status,
    ...(record.error ? { error: record.error } : {}),
    bytes: record.artifacts.reduce((sum, artifact) => sum + artifact.bytes, 0),
    durationSeconds: record.durationSeconds,
    downtimeSeconds: record.downtimeSeconds,
    ...(record.suspect ? { suspect: record.suspect.map(describeLoss) } : {}),
  }));
}

/** Where a hook points, without path or query (which often hold a token). */
export function describeEndpoint(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}`;
  } catch {
    return "(invalid url)";
  }
}

/** Calls every webhook subscribed to the payload's event. Never throws; resolves within the largest timeout. */
export async function notify(webhooks: readonly Webhook[], payload: NotificationPayload): Promise<void> {
  const subscribed = webhooks.filter((hook) => hook.events.includes(payload.event));
  await Promise.all(
    subscribed.map(async (hook) => {
      const problem = await call(hook, payload);
      const where = `${hook.method} ${describeEndpoint(hook.url)}`;
      if (problem) log.warn(`notification ${payload.event} to ${where} failed: ${problem} (the backup result is not affected)`);
      else log.info(`notification ${payload.event} sent to ${where}`);
    }),
  );
}

/** One request; resolves to undefined on a 2xx answer, else to what went wrong. */
function call(hook: Webhook, payload: NotificationPayload): Promise<string | undefined> {
  return new Promise((resolve) => {
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    const finish = (problem: string | undefined) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(problem);
    };
    try {
      const url = new URL(hook.url);
      const body = hook.method === "POST" ? Buffer.from(JSON.stringify(payload)) : undefined;
      const client = url.protocol === "https:" ? https : http;
      const request = client.request(
        url,
        {
          method: hook.method,
          agent: false, // no keep-alive socket outlives the call
          headers: { "user-agent": "composure", ...(body ? { "content-type": "application/json", "content-length": String(body.length) } : {}) },
        },
        (response) => {
          const status = response.statusCode ?? 0;
          response.resume();
          response.on("error", (error) => finish(messageOf(error)));
          response.on("end", () => finish(status >= 200 && status < 300 ? undefined : `HTTP ${status}`));
        },
      );
      timer = setTimeout(() => {
        finish(`no complete answer within ${hook.timeout_seconds} s`);
        request.destroy();
      }, hook.timeout_seconds * 1000);
      request.on("error", (error) => finish(messageOf(error)));
      request.end(body);
    } catch (error) {
      finish(messageOf(error));
    }
  });
}

// Sessions of strategies that stop nothing (hot: a dump, a snapshot through an API).
import type { Artifact } from "../../catalog/manifest.ts";
import type { CaptureSession } from "../types.ts";

/** A session that stopped nothing: no downtime; `release` undoes what it made (default nothing). */
export function hotSession(capture: () => Promise<Artifact[]>, extra: { release?: () => Promise<void>; facts?: Record<string, unknown> } = {}): CaptureSession {
  return {
    capture,
    release: extra.release ?? (async () => undefined),
    stopped: [],
    downtimeSeconds: () => 0,
    ...(extra.facts ? { facts: extra.facts } : {}),
  };
}

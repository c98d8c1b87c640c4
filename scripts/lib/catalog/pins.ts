// Pins: runs that retention never deletes. `make pin RUN=<id>` writes pin.json beside the run's
// manifest (a sealed manifest is never rewritten; like upload.json it is never uploaded), and a
// run whose tags include one of retention.pin_tags is pinned wherever it is.
import { existsSync } from "node:fs";
import { rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { z } from "zod";
import type { Manifest } from "./manifest.ts";
import { readJsonFile, writeJsonAtomically } from "./run-marks.ts";

export const pinFile = "pin.json";

const pinSchema = z.object({ pinnedAt: z.string(), host: z.string() });
export type Pin = z.infer<typeof pinSchema>;

export async function readPin(runDir: string): Promise<Pin | undefined> {
  return readJsonFile(path.join(runDir, pinFile), pinSchema);
}

export async function writePin(runDir: string, now = new Date()): Promise<void> {
  await writeJsonAtomically(path.join(runDir, pinFile), { pinnedAt: now.toISOString(), host: os.hostname() } satisfies Pin);
}

export async function removePin(runDir: string): Promise<void> {
  await rm(path.join(runDir, pinFile), { force: true });
}

/** The run's tags that retention.pin_tags names. */
export function pinningTags(manifest: Pick<Manifest, "tags"> | undefined, pinTags: readonly string[]): string[] {
  return (manifest?.tags ?? []).filter((tag) => pinTags.includes(tag));
}

/**
 * Why a run is pinned ("make pin", "tag pre-upgrade"), or undefined. `runDir`: its local folder,
 * which holds the pin (for a remote run: the local folder of the same id, when there is one).
 */
export function pinReasons(runDir: string | undefined, manifest: Pick<Manifest, "tags"> | undefined, pinTags: readonly string[]): string[] {
  const byTag = pinningTags(manifest, pinTags).map((tag) => `tag ${tag}`);
  return runDir && existsSync(path.join(runDir, pinFile)) ? ["make pin", ...byTag] : byTag;
}

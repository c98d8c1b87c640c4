// The complete runs of a project as make list shows them (local or remote), newest first: the one
// lister behind make list and the run choice of an interactive make restore.
import path from "node:path";
import { describeLoss, isSuspect } from "../catalog/fact-trends.ts";
import { readManifest, type Manifest, type ServiceRecord } from "../catalog/manifest.ts";
import { pinReasons } from "../catalog/pins.ts";
import { readAccepted, readVerification } from "../catalog/run-marks.ts";
import { listRunDirs, projectDir } from "../catalog/runs.ts";
import { readUploadState } from "../catalog/upload-state.ts";
import type { Config } from "../config/schema.ts";
import type { Remote } from "../remote/types.ts";
import { listRemoteRuns, readRemoteManifest } from "./offsite.ts";

export type RunRow = ReturnType<typeof rowOf>;

export interface ListedRun {
  row: RunRow;
  manifest: Manifest;
}

/**
 * The complete runs of `project`, newest first, from the local destination or from `remote`; only
 * the `limit` newest when given (a remote run costs a download of its manifest). Incomplete local
 * runs (no manifest) are counted, not listed.
 */
export async function listRuns(config: Config, project: string, options: { remote?: Remote; limit?: number } = {}): Promise<{ runs: ListedRun[]; incomplete: number; more: number }> {
  const { remote, limit = Infinity } = options;
  const listed: ListedRun[] = [];
  if (remote) {
    const ids = await listRemoteRuns(remote, project);
    for (const runId of ids.slice(0, limit)) {
      const manifest = await readRemoteManifest(remote, project, runId);
      listed.push({ row: rowOf(config, project, manifest, "remote"), manifest });
    }
    return { runs: listed, incomplete: 0, more: Math.max(0, ids.length - limit) };
  }
  const dirs = await listRunDirs(config.destination, project);
  const complete = dirs.filter((run) => run.complete);
  for (const run of complete.slice(0, limit)) {
    const manifest = await readManifest(run.dir, project);
    const upload = await readUploadState(run.dir);
    const offsite = upload ? upload.state : config.remote ? "not uploaded" : "-";
    listed.push({ row: rowOf(config, project, manifest, offsite, await readAccepted(run.dir), await readVerification(run.dir)), manifest });
  }
  return { runs: listed, incomplete: dirs.length - complete.length, more: Math.max(0, complete.length - limit) };
}

/**
 * One run as make list --json shows it. `verified`: each service the last make verify of this
 * copy checked and whether it passed (verify.json is local: a remote copy has none).
 */
function rowOf(config: Config, project: string, manifest: Manifest, offsite: string, accepted: string[] = [], verified: Record<string, boolean> = {}) {
  const bytes = manifest.services.flatMap((service) => service.artifacts).reduce((sum, artifact) => sum + artifact.bytes, 0);
  const marked = (service: ServiceRecord) => (service.status === "failed" ? "(failed)" : !isSuspect(service) ? "" : accepted.includes(service.name) ? "(loss accepted)" : "(suspect)");
  const services = manifest.services.map((service) => `${service.name}${marked(service)}`).join(",");
  const suspect = Object.fromEntries(manifest.services.filter(isSuspect).map((service) => [service.name, service.suspect!.map(describeLoss)]));
  // A pin lives beside the local copy of the run, which a remote run may have too.
  const pinnedBy = pinReasons(path.join(projectDir(config.destination, project), manifest.runId), manifest, config.retention.pin_tags);
  return {
    project,
    run: manifest.runId,
    started: manifest.startedAt,
    outcome: manifest.outcome,
    services,
    bytes,
    offsite,
    tags: manifest.tags ?? [],
    note: manifest.note ?? "",
    pinned: pinnedBy.length > 0,
    pinnedBy,
    verified,
    ...(Object.keys(suspect).length ? { suspect, accepted } : {}),
  };
}

/**
 * What make verify last said of a run, in a word: "-" never verified (here), "failed: a,b" the
 * services whose artifacts failed, "ok" every service it backed up passed, "ok: a" only those did.
 */
export function verifyMark(manifest: Manifest, verified: Record<string, boolean>): string {
  const checked = Object.keys(verified);
  if (checked.length === 0) return "-";
  const failed = checked.filter((service) => !verified[service]);
  if (failed.length) return `failed: ${failed.join(",")}`;
  const backedUp = manifest.services.filter((service) => service.status === "ok").map((service) => service.name);
  return backedUp.every((service) => verified[service]) ? "ok" : `ok: ${checked.join(",")}`;
}

/** Columns padded to their widest cell, two spaces apart, one line per row (the header first). */
export function formatTable(header: string[], rows: string[][]): string[] {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column].length)));
  return [header, ...rows].map((row) => row.map((cell, column) => cell.padEnd(widths[column])).join("  ").trimEnd());
}

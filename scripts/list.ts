// make list [PROJECT=] [FROM=remote] [TAG=a,b] [--json]: complete runs, newest first (incomplete ones are counted, not listed).
import path from "node:path";
import { listRunDirs, projectDir } from "./lib/catalog/runs.ts";
import { describeLoss, isSuspect } from "./lib/catalog/fact-trends.ts";
import { parseTagList, readManifest, type Manifest, type ServiceRecord } from "./lib/catalog/manifest.ts";
import { pinReasons } from "./lib/catalog/pins.ts";
import { readAccepted } from "./lib/catalog/run-marks.ts";
import { readUploadState } from "./lib/catalog/upload-state.ts";
import type { Config } from "./lib/config/schema.ts";
import { listRemoteRuns, readRemoteManifest, requireRemote } from "./lib/pipeline/offsite.ts";
import { loadSettings, main, projectsToUse } from "./lib/cli.ts";
import { ExitCode } from "./lib/errors.ts";
import { formatBytes } from "./lib/log.ts";

type Row = ReturnType<typeof rowOf>;

await main(async () => {
  const config = loadSettings();
  const wanted = parseTagList(process.env.TAG);
  const rows: Row[] = [];
  let incomplete = 0;
  const remote = process.env.FROM === "remote" ? requireRemote(config) : undefined;
  for (const project of projectsToUse(config)) {
    if (remote) {
      for (const runId of await listRemoteRuns(remote, project)) rows.push(rowOf(config, project, await readRemoteManifest(remote, project, runId), "remote"));
      continue;
    }
    for (const run of await listRunDirs(config.destination, project)) {
      if (!run.complete) {
        incomplete += 1;
        continue;
      }
      const upload = await readUploadState(run.dir);
      rows.push(rowOf(config, project, await readManifest(run.dir, project), upload ? upload.state : config.remote ? "not uploaded" : "-", await readAccepted(run.dir)));
    }
  }
  const shown = wanted.length ? rows.filter((row) => row.tags.some((tag) => wanted.includes(tag))) : rows;
  if (process.argv.includes("--json")) {
    process.stdout.write(`${JSON.stringify(shown, null, 2)}\n`);
    return ExitCode.ok;
  }
  const table = shown.map((row) => [row.project, row.run, row.started, row.outcome, formatBytes(row.bytes), row.offsite, row.pinned ? "yes" : "-", row.tags.join(",") || "-", row.services, row.note]);
  const header = ["PROJECT", "RUN", "STARTED", "OUTCOME", "SIZE", "OFF-SITE", "PINNED", "TAGS", "SERVICES", "NOTE"];
  const widths = header.map((title, column) => Math.max(title.length, ...table.map((row) => row[column].length)));
  for (const row of [header, ...table]) process.stdout.write(`${row.map((cell, column) => cell.padEnd(widths[column])).join("  ").trimEnd()}\n`);
  if (incomplete) process.stdout.write(`(${incomplete} incomplete run(s) without a manifest not listed)\n`);
  return ExitCode.ok;
});

function rowOf(config: Config, project: string, manifest: Manifest, offsite: string, accepted: string[] = []) {
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
    ...(Object.keys(suspect).length ? { suspect, accepted } : {}),
  };
}

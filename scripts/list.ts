// make list [PROJECT=] [FROM=remote] [--json]: complete runs, newest first (incomplete ones are counted, not listed).
import { listRunDirs } from "./lib/catalog/runs.ts";
import { describeLoss, isSuspect } from "./lib/catalog/fact-trends.ts";
import { readManifest, type Manifest, type ServiceRecord } from "./lib/catalog/manifest.ts";
import { readAccepted } from "./lib/catalog/run-marks.ts";
import { readUploadState } from "./lib/catalog/upload-state.ts";
import { listRemoteRuns, readRemoteManifest, requireRemote } from "./lib/pipeline/offsite.ts";
import { loadSettings, main, projectsToUse } from "./lib/cli.ts";
import { ExitCode } from "./lib/errors.ts";
import { formatBytes } from "./lib/log.ts";

await main(async () => {
  const config = loadSettings();
  const rows: Record<string, unknown>[] = [];
  let incomplete = 0;
  const remote = process.env.FROM === "remote" ? requireRemote(config) : undefined;
  for (const project of projectsToUse(config)) {
    if (remote) {
      for (const runId of await listRemoteRuns(remote, project)) rows.push(rowOf(project, await readRemoteManifest(remote, project, runId), "remote"));
      continue;
    }
    for (const run of await listRunDirs(config.destination, project)) {
      if (!run.complete) {
        incomplete += 1;
        continue;
      }
      const upload = await readUploadState(run.dir);
      rows.push(rowOf(project, await readManifest(run.dir, project), upload ? upload.state : config.remote ? "not uploaded" : "-", await readAccepted(run.dir)));
    }
  }
  if (process.argv.includes("--json")) {
    process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
    return ExitCode.ok;
  }
  const table = rows.map((row) => [row.project, row.run, row.started, row.outcome, formatBytes(Number(row.bytes)), row.offsite, row.services].map(String));
  const header = ["PROJECT", "RUN", "STARTED", "OUTCOME", "SIZE", "OFF-SITE", "SERVICES"];
  const widths = header.map((title, column) => Math.max(title.length, ...table.map((row) => row[column].length)));
  for (const row of [header, ...table]) process.stdout.write(`${row.map((cell, column) => cell.padEnd(widths[column])).join("  ").trimEnd()}\n`);
  if (incomplete) process.stdout.write(`(${incomplete} incomplete run(s) without a manifest not listed)\n`);
  return ExitCode.ok;
});

function rowOf(project: string, manifest: Manifest, offsite: string, accepted: string[] = []): Record<string, unknown> {
  const bytes = manifest.services.flatMap((service) => service.artifacts).reduce((sum, artifact) => sum + artifact.bytes, 0);
  const marked = (service: ServiceRecord) => (service.status === "failed" ? "(failed)" : !isSuspect(service) ? "" : accepted.includes(service.name) ? "(loss accepted)" : "(suspect)");
  const services = manifest.services.map((service) => `${service.name}${marked(service)}`).join(",");
  const suspect = Object.fromEntries(manifest.services.filter(isSuspect).map((service) => [service.name, service.suspect!.map(describeLoss)]));
  return { project, run: manifest.runId, started: manifest.startedAt, outcome: manifest.outcome, services, bytes, offsite, ...(Object.keys(suspect).length ? { suspect, accepted } : {}) };
}

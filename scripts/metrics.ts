// make metrics [PROJECT=]: rewrites the node_exporter textfile of each project from the catalog on
// disk (no Docker needed). Without PROJECT= or projects: in composure.yml, every project found in
// the destination.
import { existsSync, readdirSync } from "node:fs";
import path from "node:path";
import { loadSettings, main } from "./lib/cli.ts";
import { ExitCode, UsageError } from "./lib/errors.ts";
import { log } from "./lib/log.ts";
import { writeProjectMetrics } from "./lib/metrics/textfile.ts";

await main(async () => {
  const config = loadSettings();
  const named = (process.env.PROJECT ?? "").split(",").map((name) => name.trim()).filter(Boolean);
  const projects = named.length ? named : config.projects?.length ? config.projects : projectsIn(config.destination);
  if (projects.length === 0) throw new UsageError(`no project to write metrics for: ${config.destination} holds no backups (set PROJECT=)`);
  for (const project of projects) log.info(`metrics: wrote ${await writeProjectMetrics(config, project)}`);
  return ExitCode.ok;
});

function projectsIn(destination: string): string[] {
  if (!existsSync(destination)) return [];
  return readdirSync(destination, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && !entry.name.startsWith("."))
    .map((entry) => entry.name)
    .filter((name) => readdirSync(path.join(destination, name)).some((child) => /^\d{8}T\d{6}Z/.test(child) || child === ".status.json"));
}

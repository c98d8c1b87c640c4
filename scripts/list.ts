// make list [PROJECT=] [FROM=remote] [TAG=a,b] [--json]: complete runs, newest first (incomplete ones are counted, not listed).
import { parseTagList } from "./lib/catalog/manifest.ts";
import { requireRemote } from "./lib/pipeline/offsite.ts";
import { formatTable, listRuns, verifyMark, type ListedRun } from "./lib/pipeline/run-list.ts";
import { loadSettings, main, projectsToUse } from "./lib/cli.ts";
import { ExitCode } from "./lib/errors.ts";
import { formatBytes } from "./lib/log.ts";

await main(async () => {
  const config = loadSettings();
  const wanted = parseTagList(process.env.TAG);
  const runs: ListedRun[] = [];
  let incomplete = 0;
  const remote = process.env.FROM === "remote" ? requireRemote(config) : undefined;
  for (const project of projectsToUse(config)) {
    const listed = await listRuns(config, project, { remote });
    runs.push(...listed.runs);
    incomplete += listed.incomplete;
  }
  const shown = wanted.length ? runs.filter(({ row }) => row.tags.some((tag) => wanted.includes(tag))) : runs;
  if (process.argv.includes("--json")) {
    process.stdout.write(`${JSON.stringify(shown.map(({ row }) => row), null, 2)}\n`);
    return ExitCode.ok;
  }
  const table = shown.map(({ row, manifest }) => [row.project, row.run, row.started, row.outcome, formatBytes(row.bytes), verifyMark(manifest, row.verified), row.offsite, row.pinned ? "yes" : "-", row.tags.join(",") || "-", row.services, row.note]);
  const header = ["PROJECT", "RUN", "STARTED", "OUTCOME", "SIZE", "VERIFIED", "OFF-SITE", "PINNED", "TAGS", "SERVICES", "NOTE"];
  for (const line of formatTable(header, table)) process.stdout.write(`${line}\n`);
  if (incomplete) process.stdout.write(`(${incomplete} incomplete run(s) without a manifest not listed)\n`);
  return ExitCode.ok;
});

// make accept RUN=<id> | SERVICE=<name> [PROJECT=]: accept a suspected data loss, so that make
// prune no longer keeps the last good run from before it.
import { loadSettings, main, projectsToUse } from "./lib/cli.ts";
import { ExitCode } from "./lib/errors.ts";
import { log } from "./lib/log.ts";
import { refreshMetrics } from "./lib/metrics/textfile.ts";
import { acceptSuspicions } from "./lib/pipeline/accept.ts";

await main(async () => {
  const config = loadSettings();
  for (const project of projectsToUse(config)) {
    const accepted = await acceptSuspicions(config, project, process.env.RUN || undefined, process.env.SERVICE || undefined);
    log.info(`${project}: ${accepted.length} suspected loss(es) accepted; make prune may now delete the runs from before them`);
    await refreshMetrics(config, project); // composure_last_backup_suspect follows the acceptance
  }
  return ExitCode.ok;
});

// make sync [PROJECT=]: upload every complete local run that is not on the remote yet.
import { loadSettings, main, projectsToUse } from "./lib/cli.ts";
import { ExitCode } from "./lib/errors.ts";
import { log } from "./lib/log.ts";
import { requireRemote, syncProject } from "./lib/pipeline/offsite.ts";

await main(async () => {
  const config = loadSettings();
  const remote = requireRemote(config);
  let failed = 0;
  for (const project of projectsToUse(config)) {
    const result = await syncProject(config, remote, project);
    log.info(`${project}: ${result.uploaded.length} run(s) uploaded, ${result.failed.length} failed`);
    failed += result.failed.length;
  }
  return failed ? ExitCode.failed : ExitCode.ok;
});

// make sync [PROJECT=]: upload every complete local run that is not on the remote yet.
import { loadSettings, main, projectsToUse } from "./lib/cli.ts";
import { ExitCode } from "./lib/errors.ts";
import { log } from "./lib/log.ts";
import { recordInvocation } from "./lib/metrics/textfile.ts";
import { requireRemote, syncProject } from "./lib/pipeline/offsite.ts";

await main(async () => {
  const config = loadSettings();
  const remote = requireRemote(config);
  let failed = 0;
  for (const project of projectsToUse(config)) {
    let ok = false;
    try {
      const result = await syncProject(config, remote, project);
      log.info(`${project}: ${result.uploaded.length} run(s) uploaded, ${result.failed.length} failed`);
      failed += result.failed.length;
      ok = result.failed.length === 0;
    } finally {
      await recordInvocation(config, project, { command: "sync", ok }); // node_exporter textfile
    }
  }
  return failed ? ExitCode.failed : ExitCode.ok;
});

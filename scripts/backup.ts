// make backup [PROJECT=] [SERVICE=] [DRY_RUN=1]
import { flag, loadSettings, main, prepareEngine, projectsToUse } from "./lib/cli.ts";
import { ExitCode } from "./lib/errors.ts";
import { planProject } from "./lib/pipeline/plan.ts";
import { runBackup } from "./lib/pipeline/backup.ts";
import { printPlan } from "./lib/pipeline/plan-report.ts";

await main(async () => {
  const config = loadSettings();
  const helperImage = await prepareEngine(config);
  let exitCode: number = ExitCode.ok;
  for (const project of projectsToUse(config)) {
    const plan = await planProject(config, project, process.env.SERVICE || undefined);
    if (flag("DRY_RUN")) {
      await printPlan(plan, helperImage);
      continue;
    }
    const { manifest } = await runBackup(config, plan, helperImage);
    if (manifest.outcome !== "success") exitCode = ExitCode.failed;
  }
  return exitCode;
});

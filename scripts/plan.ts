// make plan [PROJECT=] [SERVICE=]: what a backup would do; nothing is touched.
import { loadSettings, main, prepareEngine, projectsToUse } from "./lib/cli.ts";
import { ExitCode } from "./lib/errors.ts";
import { planProject } from "./lib/pipeline/plan.ts";
import { printPlan } from "./lib/pipeline/plan-report.ts";

await main(async () => {
  const config = loadSettings();
  const helperImage = await prepareEngine(config);
  for (const project of projectsToUse(config)) {
    await printPlan(await planProject(config, project, process.env.SERVICE || undefined), helperImage);
  }
  return ExitCode.ok;
});

// make backup [PROJECT=] [SERVICE=] [TIER=critical|medium|low] [TAG=a,b] [NOTE=...] [DRY_RUN=1]
import { flag, loadSettings, main, prepareEngine, projectsToUse } from "./lib/cli.ts";
import { tiers } from "./lib/config/schema.ts";
import { parseNote, parseTagList } from "./lib/catalog/manifest.ts";
import { ExitCode } from "./lib/errors.ts";
import { backupPlannedProject, narrowToTier, parseTier, recordFailedBackup } from "./lib/pipeline/monitored-backup.ts";
import { planProject } from "./lib/pipeline/plan.ts";
import { printPlan } from "./lib/pipeline/plan-report.ts";

await main(async () => {
  const config = loadSettings();
  const tier = parseTier(process.env.TIER, tiers);
  const projects = projectsToUse(config);
  const dryRun = flag("DRY_RUN");
  const marks = { tags: parseTagList(process.env.TAG), note: parseNote(process.env.NOTE) };
  let exitCode: number = ExitCode.ok;
  let helperImage: string;
  try {
    helperImage = await prepareEngine(config);
  } catch (error) {
    if (!dryRun) for (const project of projects) await recordFailedBackup(config, project, error);
    throw error;
  }
  for (const project of projects) {
    let plan;
    try {
      plan = await planProject(config, project, process.env.SERVICE || undefined);
    } catch (error) {
      if (!dryRun) await recordFailedBackup(config, project, error);
      throw error;
    }
    if (dryRun) {
      await printPlan(narrowToTier(plan, tier), helperImage);
      continue;
    }
    const { ok } = await backupPlannedProject(config, plan, helperImage, tier, marks);
    if (!ok) exitCode = ExitCode.failed;
  }
  return exitCode;
});

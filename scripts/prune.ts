// make prune [PROJECT=] [FROM=local|remote|all] [DRY_RUN=1]: apply the retention policies.
import { flag, loadSettings, main, projectsToUse } from "./lib/cli.ts";
import { ExitCode, UsageError } from "./lib/errors.ts";
import { log } from "./lib/log.ts";
import { recordInvocation } from "./lib/metrics/textfile.ts";
import { requireRemote } from "./lib/pipeline/offsite.ts";
import { pruneLocal, pruneRemote } from "./lib/pipeline/prune.ts";
import { acquireLock } from "./lib/pipeline/lock.ts";
import { projectDir } from "./lib/catalog/runs.ts";
import type { RetentionDecision } from "./lib/catalog/retention.ts";

await main(async () => {
  const config = loadSettings();
  const where = process.env.FROM || "local";
  if (!["local", "remote", "all"].includes(where)) throw new UsageError(`FROM must be local, remote or all, not "${where}"`);
  const dryRun = flag("DRY_RUN");
  for (const project of projectsToUse(config)) {
    const unlock = await acquireLock(projectDir(config.destination, project), "prune", config.lock.timeout_seconds);
    let ok = false;
    try {
      if (where !== "remote") report(project, "local", await pruneLocal(config, project, dryRun), dryRun);
      if (where !== "local") report(project, "remote", await pruneRemote(config, requireRemote(config, { prune: true }), project, dryRun), dryRun);
      ok = true;
    } finally {
      await unlock();
      if (!dryRun) await recordInvocation(config, project, { command: "prune", ok }); // backups kept changed: rewrite the textfile
    }
  }
  return ExitCode.ok;
});

function report(project: string, location: string, decisions: RetentionDecision[], dryRun: boolean): void {
  for (const decision of decisions) {
    const verb = decision.keep ? "keep  " : dryRun ? "would delete" : "delete";
    process.stdout.write(`${project} ${location} ${decision.id} ${verb.padEnd(12)} ${decision.reasons.join("; ")}\n`);
  }
  const deleted = decisions.filter((decision) => !decision.keep).length;
  log.info(`${project} ${location}: ${decisions.length - deleted} kept, ${deleted} ${dryRun ? "would be deleted" : "deleted"}`);
}

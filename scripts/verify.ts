// make verify [RUN=latest|<id>|all] [--json]
import { loadSettings, main, projectsToUse } from "./lib/cli.ts";
import { ExitCode } from "./lib/errors.ts";
import { log } from "./lib/log.ts";
import { checksFromFindings, recordInvocation } from "./lib/metrics/textfile.ts";
import { verifyRuns, type VerifyFinding } from "./lib/pipeline/verify.ts";

await main(async () => {
  const config = loadSettings();
  let problems = 0;
  for (const project of projectsToUse(config)) {
    let findings: VerifyFinding[] | undefined;
    try {
      findings = await verifyRuns(config.destination, project, process.env.RUN || "latest");
    } finally {
      // recorded in the node_exporter textfile even when verify could not run at all
      const ok = findings !== undefined && findings.every((finding) => finding.ok);
      await recordInvocation(config, project, { command: "verify", ok, checks: findings && { kind: "verify", results: checksFromFindings(findings) } });
    }
    if (process.argv.includes("--json")) process.stdout.write(`${JSON.stringify({ project, findings }, null, 2)}\n`);
    for (const finding of findings) {
      const where = `${project}/${finding.run}${finding.artifact ? `/${finding.artifact}` : ""}`;
      if (finding.ok) log.info(`ok      ${where}`);
      else log.error(`FAILED  ${where}: ${finding.message}`);
    }
    problems += findings.filter((finding) => !finding.ok).length;
  }
  if (problems) log.error(`verification found ${problems} problem(s)`);
  else log.info("verification passed");
  return problems ? ExitCode.failed : ExitCode.ok;
});

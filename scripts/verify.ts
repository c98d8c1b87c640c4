// make verify [RUN=latest|<id>|all] [DEEP=1] [--json]
// DEEP=1 also runs a restore drill of the run (see lib/pipeline/drill.ts).
import { flag, loadSettings, main, prepareEngine, projectsToUse } from "./lib/cli.ts";
import type { Config } from "./lib/config/schema.ts";
import { ExitCode, UsageError } from "./lib/errors.ts";
import { formatSeconds, log } from "./lib/log.ts";
import { checksFromFindings, recordInvocation } from "./lib/metrics/textfile.ts";
import { runDrill, type DrillReport } from "./lib/pipeline/drill.ts";
import { verifyRuns, type VerifyFinding } from "./lib/pipeline/verify.ts";

await main(async () => {
  const config = loadSettings();
  const selector = process.env.RUN || "latest";
  const deep = flag("DEEP");
  if (deep && selector === "all") throw new UsageError("DEEP=1 drills one run: use RUN=latest or RUN=<id>");
  let problems = 0;
  for (const project of projectsToUse(config)) {
    let findings: VerifyFinding[] | undefined;
    try {
      findings = await verifyRuns(config, project, selector, deep);
    } finally {
      // recorded in the node_exporter textfile even when verify could not run at all
      const ok = findings !== undefined && findings.every((finding) => finding.ok);
      await recordInvocation(config, project, { command: "verify", ok, checks: findings && { kind: "verify", results: checksFromFindings(findings) } });
    }
    for (const finding of findings) {
      const where = `${project}/${finding.run}${finding.artifact ? `/${finding.artifact}` : ""}`;
      if (finding.ok) log.info(`ok      ${where}${finding.artifact ? "" : `: ${finding.message}`}`);
      else log.error(`FAILED  ${where}: ${finding.message}`);
    }
    problems += findings.filter((finding) => !finding.ok).length;
    // A drill of a run that failed verification would only repeat its errors.
    const drill = deep && problems === 0 ? await drillAndRecord(config, project, selector) : undefined;
    if (drill) problems += drill.results.filter((result) => !result.ok).length;
    if (process.argv.includes("--json")) process.stdout.write(`${JSON.stringify({ project, findings, drill }, null, 2)}\n`);
  }
  if (problems) log.error(`verification found ${problems} problem(s)`);
  else log.info(deep ? "verification and restore drill passed" : "verification passed");
  return problems ? ExitCode.failed : ExitCode.ok;
});

async function drillAndRecord(config: Config, project: string, selector: string): Promise<DrillReport> {
  const helperImage = await prepareEngine(config);
  let report: DrillReport | undefined;
  try {
    report = await runDrill(config, helperImage, project, selector);
  } finally {
    const at = new Date().toISOString();
    const results = Object.fromEntries((report?.results ?? []).map((result) => [result.service, { ok: result.ok, at, run: report!.run, seconds: result.totalSeconds }]));
    await recordInvocation(config, project, { command: "verify", ok: report !== undefined && report.results.every((result) => result.ok), checks: { kind: "restore_drill", results } });
  }
  for (const result of report.results) {
    if (result.ok) log.info(`drill ok      ${project}/${report.run}/${result.service} (${result.strategy}): ${result.message}`);
    else log.error(`drill FAILED  ${project}/${report.run}/${result.service} (${result.strategy}): ${result.message}`);
  }
  log.info(`drill of run ${report.run}: ${report.results.filter((result) => result.ok).length} of ${report.results.length} service(s) restored and answered as recorded in ${formatSeconds(report.seconds)} (the stack's restore time); scratch project ${report.scratchProject} removed`);
  return report;
}

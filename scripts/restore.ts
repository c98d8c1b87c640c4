// make restore [RUN=latest|<id>] [SERVICE=] [VOLUME=] [FROM=remote] [INTO=<project>] [DRY_RUN=1] [FORCE=1] [NO_RESCUE=1] [CONFLICT=] [CLEAN=1] [RESTORE_SECRETS=1]
import { flag, loadSettings, main, prepareEngine, projectsToUse } from "./lib/cli.ts";
import type { Config } from "./lib/config/schema.ts";
import { ExitCode, UsageError } from "./lib/errors.ts";
import type { Remote } from "./lib/remote/types.ts";
import { fetchRemoteRun, requireRemote } from "./lib/pipeline/offsite.ts";
import { log } from "./lib/log.ts";
import { chooseRestore, openPrompt, type RestoreChoice } from "./lib/pipeline/restore-choice.ts";
import { runRestore, type RestoreOutcome } from "./lib/pipeline/restore.ts";

await main(async () => {
  const config = loadSettings();
  const projects = projectsToUse(config);
  if (projects.length !== 1) throw new UsageError(`restore acts on one project at a time: set PROJECT= to one of ${projects.join(", ")}`);
  const into = process.env.INTO || undefined;
  if (into && !/^[a-z0-9][a-z0-9_-]*$/.test(into)) throw new UsageError(`INTO must be a compose project name (lowercase letters, digits, '-' and '_'), not "${into}"`);
  if (process.env.FROM && !["local", "remote"].includes(process.env.FROM)) throw new UsageError(`FROM must be local or remote, not "${process.env.FROM}"`);
  const remote = process.env.FROM === "remote" ? requireRemote(config) : undefined;
  const helperImage = await prepareEngine(config);
  const service = process.env.SERVICE || undefined;
  // A person at a terminal (not CI) who named no run, asked for no dry run and no FORCE=1 picks
  // the run and the services; everyone else gets RUN=latest, as before.
  const interactive = Boolean(process.stdin.isTTY && process.stderr.isTTY) && !flag("CI");
  const choice: RestoreChoice = interactive && !process.env.RUN && !flag("DRY_RUN") && !flag("FORCE") ? await askForRun(config, projects[0], remote, service) : { run: process.env.RUN || "latest", services: service ? [service] : undefined };
  const run = remote ? await fetchRemoteRun(config, remote, projects[0], choice.run) : choice.run;
  const outcome = await runRestore(config, helperImage, {
    project: projects[0],
    into,
    run,
    services: choice.services,
    volume: process.env.VOLUME || undefined,
    dryRun: flag("DRY_RUN"),
    force: flag("FORCE"),
    rescue: !flag("NO_RESCUE"),
    interactive,
    conflict: process.env.CONFLICT || undefined,
    clean: flag("CLEAN"),
    restoreSecrets: flag("RESTORE_SECRETS"),
  });
  if (flag("DRY_RUN")) printPreview(outcome);
  return outcome.failed.length ? ExitCode.failed : ExitCode.ok;
});

async function askForRun(config: Config, project: string, remote: Remote | undefined, service: string | undefined): Promise<RestoreChoice> {
  const prompt = openPrompt();
  try {
    return await chooseRestore(config, project, { remote, service, ask: prompt.ask, say: (line) => process.stderr.write(`${line}\n`) });
  } finally {
    prompt.close();
  }
}

/** What a restore would do, on stdout; the services whose preview failed are named on stderr (their errors are logged above). */
function printPreview(outcome: RestoreOutcome): void {
  for (const service of outcome.services) for (const line of service.lines) process.stdout.write(`${service.name}: ${line}\n`);
  if (outcome.failed.length) log.error(`dry run of run ${outcome.runId}: the preview of ${outcome.failed.join(", ")} failed (see above); a restore would not restore ${outcome.failed.length > 1 ? "them" : "it"}`);
}

// make schedule: runs the jobs of `schedule:` in composure.yml in the foreground with node-cron,
// one at a time, printing a health line per run. SIGTERM / SIGINT: no new runs, the running one
// restores its services and stops, then exit 0.
import { main } from "./lib/cli.ts";
import { loadConfig } from "./lib/config/load.ts";
import { ExitCode, UsageError } from "./lib/errors.ts";
import { log } from "./lib/log.ts";
import { listJobs } from "./lib/schedule/jobs.ts";
import { Scheduler } from "./lib/schedule/scheduler.ts";
import { strategyKinds } from "./lib/strategies/registry.ts";

await main(async () => {
  const { config } = loadConfig(process.env, strategyKinds);
  const { jobs, skipped } = listJobs(config.schedule, undefined, Boolean((config as { remote?: unknown }).remote));
  for (const job of skipped) log.info(`not scheduled: ${job.name} (${job.reason})`);
  if (jobs.length === 0) throw new UsageError("no job to schedule: every entry of schedule: is false or has no make target");
  const scheduler = new Scheduler({ jobs });
  const stopped = new Promise<NodeJS.Signals>((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      log.info(`received ${signal}: stopping the scheduler`);
      resolve(signal);
    };
    process.once("SIGTERM", onSignal);
    process.once("SIGINT", onSignal);
  });
  scheduler.start();
  log.info(`composure scheduler running (pid ${process.pid}); SIGTERM stops it`);
  const signal = await stopped;
  // a second signal while the job cleans up is acknowledged, never fatal
  const ignore = (again: NodeJS.Signals) => log.warn(`received ${again} again: still waiting for the running job to restore its services`);
  process.on("SIGTERM", ignore);
  process.on("SIGINT", ignore);
  await scheduler.stop(signal);
  log.info("scheduler stopped");
  return ExitCode.ok;
});

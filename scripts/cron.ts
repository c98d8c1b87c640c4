// make cron-install [CRON=system|user] [CRON_FILE=] [CRON_LOG=] [DRY_RUN=1] / make cron-remove
// Writes the scheduled jobs (schedule: in composure.yml) as crontab entries: by default the file
// /etc/cron.d/composure (CRON_FILE= elsewhere), with CRON=user a block in the user's crontab.
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { $ } from "zx";
import { flag, main } from "./lib/cli.ts";
import { loadConfig } from "./lib/config/load.ts";
import { ExitCode, UsageError } from "./lib/errors.ts";
import { log } from "./lib/log.ts";
import { whyNotRun } from "./lib/shell.ts";
import { checkForCron, fileMarker, mergeIntoCrontab, removeFromCrontab, renderCronFile, type CronSettings } from "./lib/schedule/cron-file.ts";
import { listJobs } from "./lib/schedule/jobs.ts";
import { repoRoot } from "./lib/checkout.ts";
import { strategyKinds } from "./lib/strategies/registry.ts";

const action = process.argv[2];
const mode = (process.env.CRON || "system").toLowerCase();
const cronFile = path.resolve(process.env.CRON_FILE || "/etc/cron.d/composure");

await main(async () => {
  if (action !== "install" && action !== "remove") throw new UsageError("usage: scripts/cron.ts install|remove");
  if (mode !== "system" && mode !== "user") throw new UsageError(`CRON=${process.env.CRON} is not known: use CRON=system (${cronFile}) or CRON=user (your crontab)`);
  return action === "install" ? install() : remove();
});

function install(): number {
  const { config, file } = loadConfig(process.env, strategyKinds);
  const { jobs, skipped } = listJobs(config.schedule, undefined, Boolean((config as { remote?: unknown }).remote));
  checkForCron(jobs);
  const settings: CronSettings = {
    repo: repoRoot,
    make: findOnPath("make"),
    pathVariable: [...new Set([path.dirname(process.execPath), "/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"])].join(":"),
    logFile: path.resolve(process.env.CRON_LOG || defaultLogFile()),
    variables: bakedVariables(file),
    user: mode === "system" ? os.userInfo().username : undefined,
    generatedAt: new Date().toISOString(),
  };
  for (const job of skipped) log.info(`not scheduled: ${job.name} (${job.reason})`);
  if (mode === "system") {
    const text = renderCronFile(jobs, settings);
    if (flag("DRY_RUN")) {
      process.stdout.write(`# would write ${cronFile}:\n${text}`);
      return ExitCode.ok;
    }
    mkdirSync(path.dirname(settings.logFile), { recursive: true });
    mkdirSync(path.dirname(cronFile), { recursive: true });
    const temporary = `${cronFile}.tmp`; // cron ignores names with a dot
    writeFileSync(temporary, text, { mode: 0o644 });
    renameSync(temporary, cronFile);
    log.info(`wrote ${jobs.length} job(s) to ${cronFile}; output goes to ${settings.logFile}`);
    return ExitCode.ok;
  }
  const merged = mergeIntoCrontab(readCrontab(flag("DRY_RUN")), jobs, settings);
  if (flag("DRY_RUN")) {
    process.stdout.write(`# would install this crontab for ${os.userInfo().username}:\n${merged}`);
    return ExitCode.ok;
  }
  mkdirSync(path.dirname(settings.logFile), { recursive: true });
  writeCrontab(merged);
  log.info(`installed ${jobs.length} job(s) in the crontab of ${os.userInfo().username}; output goes to ${settings.logFile}`);
  return ExitCode.ok;
}

function remove(): number {
  if (mode === "system") {
    if (!existsSync(cronFile)) {
      log.info(`${cronFile} does not exist: nothing to remove`);
      return ExitCode.ok;
    }
    if (!readFileSync(cronFile, "utf8").startsWith(fileMarker)) throw new UsageError(`${cronFile} was not written by make cron-install: left as it is`);
    if (flag("DRY_RUN")) process.stdout.write(`# would remove ${cronFile}\n`);
    else rmSync(cronFile);
    log.info(`${flag("DRY_RUN") ? "would remove" : "removed"} ${cronFile}`);
    return ExitCode.ok;
  }
  const current = readCrontab();
  const cleaned = removeFromCrontab(current, repoRoot);
  if (flag("DRY_RUN")) process.stdout.write(`# would install this crontab for ${os.userInfo().username}:\n${cleaned}`);
  else if (cleaned !== current) writeCrontab(cleaned);
  log.info(cleaned === current ? "the crontab has no composure jobs for this checkout" : `${flag("DRY_RUN") ? "would remove" : "removed"} composure's jobs from the crontab`);
  return ExitCode.ok;
}

/** CONFIG, PROJECT, DESTINATION and METRICS_DIR as they are now, absolute, so cron's bare environment runs the same thing. */
function bakedVariables(configFile: string | undefined): Record<string, string> {
  const variables: Record<string, string> = {};
  if (configFile) variables.CONFIG = path.resolve(configFile);
  if (process.env.PROJECT) variables.PROJECT = process.env.PROJECT;
  if (process.env.DESTINATION) variables.DESTINATION = path.resolve(process.env.DESTINATION);
  if (process.env.METRICS_DIR) variables.METRICS_DIR = path.resolve(process.env.METRICS_DIR);
  return variables;
}

function defaultLogFile(): string {
  if (mode === "system") return "/var/log/composure.log";
  return path.join(process.env.XDG_STATE_HOME || path.join(os.homedir(), ".local", "state"), "composure", "cron.log");
}

function findOnPath(command: string): string {
  for (const dir of (process.env.PATH ?? "").split(":").filter(Boolean)) {
    const candidate = path.join(dir, command);
    if (existsSync(candidate)) return candidate;
  }
  throw new UsageError(`${command} is not on PATH: install it first`);
}

function readCrontab(dryRun = false): string {
  const result = $({ sync: true, quiet: true, nothrow: true })`crontab -l`;
  const notRun = whyNotRun(result);
  if (notRun && dryRun) {
    log.warn(`cannot run crontab (${notRun}): showing composure's block alone`);
    return "";
  }
  if (notRun) throw new UsageError(`cannot run crontab (${notRun}): install cron, or use the system file (CRON=system)`);
  if (result.exitCode !== 0) {
    if (/no crontab/i.test(result.stderr)) return "";
    throw new UsageError(`crontab -l failed: ${result.stderr.trim()}`);
  }
  return result.stdout;
}

function writeCrontab(text: string): void {
  const result = $({ sync: true, quiet: true, nothrow: true, input: text })`crontab -`;
  if (result.exitCode !== 0) throw new UsageError(`crontab - failed: ${whyNotRun(result) ?? result.stderr.trim()}`);
}

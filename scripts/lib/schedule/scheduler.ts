// make schedule: node-cron fires the scheduled jobs in the foreground (a container's or a
// systemd unit's main process). One job runs at a time: a tick that finds another job running
// queues its job once (a second tick of a job already queued or running is dropped), so runs
// never overlap; the project lock guards against anything else running composure meanwhile.
// Each job is a child process running scripts/<target>.ts, exactly what `make <target>` runs,
// in its own process group so that only the scheduler decides what it receives. On SIGTERM the
// scheduler stops firing, passes the signal to the running job once (its cleanup stack restarts
// every stopped service, then it exits) and exits 0 when the job has gone.
import type { ChildProcess } from "node:child_process";
import cron, { type ScheduledTask } from "node-cron";
import { $ } from "zx";
import { log } from "../log.ts";
import { nodeArgumentsOf, type Job } from "./jobs.ts";
import { repoRoot } from "../checkout.ts";

export interface JobRun {
  job: Job;
  startedAt: Date;
  finishedAt: Date;
  exitCode: number;
  /** true when the scheduler was stopping and interrupted the job. */
  interrupted: boolean;
}

export interface SchedulerOptions {
  jobs: Job[];
  /** Environment of every job (the scheduler's own plus the job's variables). */
  env?: NodeJS.ProcessEnv;
  /** One line per finished run; defaults to stdout. */
  health?: (line: string, run: JobRun) => void;
  /** How a job is started; tests may replace it. */
  start?: (job: Job, env: NodeJS.ProcessEnv) => ChildProcess;
}

export function startJobProcess(job: Job, env: NodeJS.ProcessEnv): ChildProcess {
  // exec: the shell becomes the job, so the signal the scheduler passes on reaches the job itself.
  const started = $({ cwd: repoRoot, env: { ...env, ...job.variables }, stdio: ["ignore", "inherit", "inherit"], detached: true, quiet: true, nothrow: true })`exec ${process.execPath} ${nodeArgumentsOf(job.target)}`;
  return started.child!;
}

export function healthLine(run: JobRun, next: Date | null): string {
  const seconds = (run.finishedAt.getTime() - run.startedAt.getTime()) / 1000;
  const result = run.interrupted ? "interrupted" : run.exitCode === 0 ? "ok" : "failed";
  return `composure-schedule ${run.finishedAt.toISOString()} job=${run.job.name} result=${result} exit=${run.exitCode} started=${run.startedAt.toISOString()} duration_s=${seconds.toFixed(1)} next=${next?.toISOString() ?? "none"}`;
}

export class Scheduler {
  private tasks = new Map<string, ScheduledTask>();
  private queue: Job[] = [];
  private running?: { job: Job; child: ChildProcess; done: Promise<void> };
  private stopping = false;

  constructor(private readonly options: SchedulerOptions) {}

  start(): void {
    cron.setLogger({
      info: () => undefined,
      debug: () => undefined,
      warn: (message) => log.warn(`node-cron: ${message}`),
      error: (message) => log.error(`node-cron: ${message instanceof Error ? message.message : message}`),
    });
    for (const job of this.options.jobs) {
      const task = cron.schedule(job.expression, () => this.fire(job), { name: job.name });
      this.tasks.set(job.name, task);
      log.info(`scheduled ${job.name}: "${job.expression}" (make ${job.target}${Object.entries(job.variables).map(([name, value]) => ` ${name}=${value}`).join("")}), next at ${task.getNextRun()?.toISOString() ?? "never"}`);
    }
  }

  /** A tick: run now, or queue once behind the running job. */
  fire(job: Job): void {
    if (this.stopping) return;
    if (this.running?.job.name === job.name || this.queue.some((queued) => queued.name === job.name)) {
      log.info(`${job.name}: tick skipped, the previous one is still ${this.running?.job.name === job.name ? "running" : "queued"}`);
      return;
    }
    this.queue.push(job);
    if (this.running) log.info(`${job.name}: queued behind ${this.running.job.name}`);
    this.pump();
  }

  private pump(): void {
    if (this.running || this.stopping) return;
    const job = this.queue.shift();
    if (!job) return;
    const startedAt = new Date();
    log.info(`${job.name}: starting`);
    const child = (this.options.start ?? startJobProcess)(job, this.options.env ?? process.env);
    const done = new Promise<void>((resolve) => {
      const finish = (exitCode: number) => {
        const run: JobRun = { job, startedAt, finishedAt: new Date(), exitCode, interrupted: this.stopping };
        const line = healthLine(run, this.stopping ? null : (this.tasks.get(job.name)?.getNextRun() ?? null));
        if (this.options.health) this.options.health(line, run);
        else process.stdout.write(`${line}\n`);
        this.running = undefined;
        resolve();
        this.pump();
      };
      child.once("error", (error) => {
        log.error(`${job.name}: could not start: ${error.message}`);
        finish(127);
      });
      child.once("exit", (code, signal) => finish(code ?? (signal ? 128 + (signalNumbers[signal] ?? 0) : 1)));
    });
    this.running = { job, child, done };
  }

  /** Stops firing, interrupts the running job (which restores its services first) and waits for it. */
  async stop(signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.queue = [];
    for (const task of this.tasks.values()) await task.destroy();
    const running = this.running;
    if (running) {
      log.info(`${signal}: letting ${running.job.name} restore its services and stop`);
      running.child.kill(signal); // once: a second SIGTERM would cut its cleanup short
      await running.done;
    }
  }

  isBusy(): boolean {
    return Boolean(this.running);
  }
}

const signalNumbers: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };

// make restore on a terminal without RUN=: the operator picks the run from the recent complete runs
// (as make list shows them) and the services, before the plan is shown for confirmation.
import { createInterface } from "node:readline/promises";
import type { Manifest } from "../catalog/manifest.ts";
import { isRescueRun } from "../catalog/runs.ts";
import type { Config } from "../config/schema.ts";
import { RefusedError, UsageError } from "../errors.ts";
import { formatBytes } from "../log.ts";
import type { Remote } from "../remote/types.ts";
import { formatTable, listRuns, verifyMark, type ListedRun } from "./run-list.ts";

/** Asks one question and resolves with the answer as typed. */
export type Ask = (question: string) => Promise<string>;

export interface RestoreChoice {
  run: string;
  /** The services chosen; undefined: all of the run's. */
  services?: string[];
}

/** How many of the newest runs are offered; an older one is still named by its id (or RUN=). */
export const offeredRuns = 20;

/**
 * Shows the recent complete runs (with SERVICE=: those that backed it up), asks for one, then for
 * the services to restore (not asked with SERVICE= or when the run has one). Enter takes the
 * newest run that is not a rescue copy (what RUN=latest restores) and all its services.
 */
export async function chooseRestore(config: Config, project: string, options: { remote?: Remote; service?: string; ask: Ask; say: (line: string) => void }): Promise<RestoreChoice> {
  const { ask, say, service } = options;
  const listed = await listRuns(config, project, { remote: options.remote, limit: offeredRuns });
  const runs = listed.runs.filter(({ manifest }) => !service || restorable(manifest).includes(service));
  if (runs.length === 0) {
    throw new UsageError(`no complete run of project ${project}${service ? ` has a backup of service ${service}` : ""}${options.remote ? ` on ${options.remote.description}` : ""}: see 'make list'`);
  }
  say(`complete runs of project ${project}${options.remote ? ` on ${options.remote.description}` : ""}${service ? ` with a backup of ${service}` : ""}, newest first:`);
  for (const line of runTable(runs)) say(line);
  if (listed.more) say(`(${listed.more} older run(s) not shown: type a run id, or see 'make list')`);
  const fallback = Math.max(0, runs.findIndex(({ manifest }) => !isRescueRun(manifest.runId))) + 1;
  const { manifest } = await askUntilValid(ask, say, `Run to restore (number or run id) [${fallback}]: `, (answer) => pickRun(answer, runs, fallback));
  if (service) return { run: manifest.runId, services: [service] };
  const names = restorable(manifest);
  if (names.length <= 1) return { run: manifest.runId };
  say(`services backed up in run ${manifest.runId}:`);
  for (const [index, record] of manifest.services.filter((candidate) => candidate.status === "ok").entries()) say(`  ${index + 1}  ${record.name} (${record.strategy})`);
  const services = await askUntilValid(ask, say, "Services to restore (numbers or names, comma-separated) [all]: ", (answer) => pickServices(answer, names));
  return { run: manifest.runId, services: services.length === names.length ? undefined : services };
}

/** The choices as a numbered table: run, time, services, size, verify result, tags, note. */
function runTable(runs: ListedRun[]): string[] {
  const rows = runs.map(({ row, manifest }, index) => [
    String(index + 1),
    row.run,
    row.started,
    row.services,
    formatBytes(row.bytes),
    verifyMark(manifest, row.verified),
    row.tags.join(",") || "-",
    row.note || (isRescueRun(row.run) ? (manifest.reason ?? "rescue copy") : ""),
  ]);
  return formatTable(["#", "RUN", "STARTED", "SERVICES", "SIZE", "VERIFIED", "TAGS", "NOTE"], rows).map((line) => `  ${line}`);
}

/** The services of a run that a restore can bring back (those whose backup succeeded). */
const restorable = (manifest: Manifest) => manifest.services.filter((record) => record.status === "ok").map((record) => record.name);

/** Asks again, saying why, until `parse` accepts the answer (it throws a UsageError otherwise). */
async function askUntilValid<T>(ask: Ask, say: (line: string) => void, question: string, parse: (answer: string) => T): Promise<T> {
  for (;;) {
    try {
      return parse((await ask(question)).trim());
    } catch (error) {
      if (!(error instanceof UsageError)) throw error;
      say(error.message);
    }
  }
}

/** An answer to the run question: empty (the default), a number of the table, or a run id. */
export function pickRun<T extends { manifest: Manifest }>(answer: string, runs: T[], fallback: number): T {
  if (answer === "") return runs[fallback - 1];
  if (/^\d+$/.test(answer)) {
    const run = runs[Number(answer) - 1];
    if (!run) throw new UsageError(`no run ${answer}: answer a number from 1 to ${runs.length}, or a run id`);
    return run;
  }
  const run = runs.find(({ manifest }) => manifest.runId === answer);
  if (!run) throw new UsageError(`no run ${answer} among those listed: answer a number from 1 to ${runs.length}, or one of their ids`);
  return run;
}

/** An answer to the services question: empty (all), or numbers and names separated by commas or spaces. */
export function pickServices(answer: string, names: string[]): string[] {
  if (answer === "") return names;
  const picked = answer.split(/[\s,]+/).filter(Boolean).map((word) => {
    const name = /^\d+$/.test(word) ? names[Number(word) - 1] : names.find((candidate) => candidate === word);
    if (!name) throw new UsageError(`no service ${word}: answer numbers from 1 to ${names.length} or names (${names.join(", ")}), separated by commas`);
    return name;
  });
  return names.filter((name) => picked.includes(name)); // the run's order, each once
}

export interface Prompt {
  ask: Ask;
  close(): void;
}

/**
 * Questions on the terminal (stderr, so stdout stays the output). Ctrl-C or Ctrl-D at a question
 * cancels the restore before anything was changed: a RefusedError (exit 4).
 */
export function openPrompt(): Prompt {
  const readline = createInterface({ input: process.stdin, output: process.stderr });
  let cancel: () => void = () => undefined;
  const cancelled = new Promise<never>((_, reject) => (cancel = () => reject(new RefusedError("restore cancelled: nothing was changed"))));
  cancelled.catch(() => undefined); // closing after the last answer rejects it too, unobserved
  let asking = false;
  const interrupt = () => {
    if (asking) process.stderr.write("\n"); // the message goes below the question, not after it
    asking = false;
    cancel();
  };
  readline.on("SIGINT", interrupt);
  readline.on("close", interrupt);
  const ask = async (question: string) => {
    asking = true;
    try {
      return await Promise.race([readline.question(question), cancelled]);
    } finally {
      asking = false;
    }
  };
  return { ask, close: () => readline.close() };
}

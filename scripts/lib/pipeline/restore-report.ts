// What a restore did per service, and how it is told: a failure with what to do next, and the
// summary table at the end of a whole-run restore.
import { describeEngineError } from "../docker/engine.ts";
import { StepError } from "../errors.ts";
import { formatSeconds } from "../log.ts";

export interface ServiceResult {
  name: string;
  strategy: string;
  result: "ok" | "failed" | "dry-run";
  seconds: number;
  /** What its strategy did (or, in a preview, would do), one line each. */
  lines: string[];
  error?: string;
  /** With an error: what to do next. */
  next?: string;
}

/**
 * The failure of one service. A strategy's StepError hint is part of its message already; either
 * way the operator gets the command that retries this service alone, so a whole run is not
 * restored again for one service.
 */
export function failureOf(error: unknown, retry: string): { error: string; next: string } {
  const hinted = error instanceof StepError && Boolean(error.hint);
  return {
    error: describeEngineError(error),
    next: hinted ? `after that, \`${retry}\` restores that service alone` : `fix the cause, then \`${retry}\` restores that service alone`,
  };
}

const maxWidth = 100;

/** One cell of "what it did": the first line (or the error), shortened; more lines counted. */
export function shortForm(result: ServiceResult): string {
  const first = result.result === "failed" ? (result.error ?? "failed") : (result.lines[0] ?? "nothing to restore");
  const more = result.result === "failed" || result.lines.length < 2 ? "" : ` (+${result.lines.length - 1} more)`;
  const room = maxWidth - more.length;
  const line = first.split("\n")[0];
  return `${line.length > room ? `${line.slice(0, room - 3)}...` : line}${more}`;
}

/** The table printed at the end of a real restore: a headline, then one row per service in restore order. */
export function summaryLines(runId: string, project: string, results: ServiceResult[]): string[] {
  const failed = results.filter((result) => result.result === "failed");
  const headline = failed.length
    ? `restore of run ${runId} into project ${project}: ${results.length - failed.length} of ${results.length} services restored, ${failed.length} failed (${failed.map((result) => result.name).join(", ")})`
    : `restore of run ${runId} into project ${project}: all ${results.length} services restored`;
  const header = ["SERVICE", "STRATEGY", "RESULT", "TIME", "WHAT IT DID"];
  const rows = results.map((result) => [result.name, result.strategy, result.result, formatSeconds(result.seconds), shortForm(result)]);
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column].length)));
  const table = [header, ...rows].map((row) => `  ${row.map((cell, column) => cell.padEnd(widths[column])).join("  ").trimEnd()}`);
  return [headline, ...table];
}

// The small family of errors composure raises. Each message says what failed, where, and what
// to do; one top-level catch per script maps the class to an exit code (see exitCodeOf).

export const ExitCode = {
  ok: 0,
  failed: 1, // a run failed or was partial, a restore failed, verification found problems
  usage: 2, // bad configuration, labels or arguments: nothing was touched
  locked: 3, // another composure run holds the project's lock
  refused: 4, // a destructive action needs confirmation (FORCE=1 without a TTY)
} as const;

export class ConfigError extends Error {
  constructor(readonly issues: string[]) {
    super(
      issues.length === 1
        ? `invalid configuration: ${issues[0]}`
        : `invalid configuration (${issues.length} problems):\n${issues.map((issue) => `  - ${issue}`).join("\n")}`,
    );
    this.name = "ConfigError";
  }
}

export class UsageError extends Error {
  name = "UsageError";
}

export class RefusedError extends Error {
  name = "RefusedError";
}

export class LockError extends Error {
  name = "LockError";
}

export class RemoteError extends Error {
  name = "RemoteError";
}

/** A failure inside one phase of one service: names the phase, the service and a hint. */
export class StepError extends Error {
  constructor(
    readonly phase: string,
    readonly service: string,
    readonly cause: unknown,
    readonly hint?: string,
  ) {
    super(`${phase} of service ${service} failed: ${messageOf(cause)}${hint ? ` (${hint})` : ""}`);
    this.name = "StepError";
  }
}

export function messageOf(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}

export function exitCodeOf(error: unknown): number {
  if (error instanceof ConfigError || error instanceof UsageError) return ExitCode.usage;
  if (error instanceof LockError) return ExitCode.locked;
  if (error instanceof RefusedError) return ExitCode.refused;
  return ExitCode.failed;
}

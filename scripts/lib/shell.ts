// Child programs (zstd, age, tar, mkfifo, rclone) with argv arrays only: spawned without a shell,
// or by zx, which quotes each value as one argument, so no value is ever interpreted by a shell.
// Failures read "<command> exited with N: <tail of stderr>", "<command> was killed by SIGX" or
// "cannot run <command>: ...", and a program still running when composure exits (on a signal,
// say) is killed, so none is left waiting on a FIFO.
// hand-spawned: zx reads a piped stdout itself from the start (into memory, without backpressure), so a stream handed on to the next program or a reader would lose its start and hold gigabytes.
import { spawn, type ChildProcess, type StdioOptions } from "node:child_process";
import { $, type ProcessOutput } from "zx";

export interface Spawned {
  child: ChildProcess;
  done: Promise<void>;
}

/** Programs still running; killed when composure exits. */
const running = new Set<ChildProcess>();
let killOnExit = false;

function track(child: ChildProcess): void {
  running.add(child);
  child.on("exit", () => running.delete(child));
  child.on("error", () => running.delete(child));
  if (!killOnExit) {
    killOnExit = true;
    process.on("exit", () => running.forEach((program) => program.kill("SIGKILL")));
  }
}

/** A program that ended badly, with its exit code (null when a signal ended it or it never ran). */
export class ProgramError extends Error {
  constructor(message: string, readonly exitCode: number | null) {
    super(message);
  }
}

function failure(command: string, code: number | null, signal: NodeJS.Signals | null, stderr: string): ProgramError {
  const tail = stderr.slice(-4000).trim();
  return new ProgramError(`${command} ${signal ? `was killed by ${signal}` : `exited with ${code}`}${tail ? `: ${tail}` : ""}`, code);
}

/** A program in a streaming pipeline: `child`'s pipes are the caller's; `done` rejects when it fails. */
export function spawnChecked(command: string, args: string[], stdio: StdioOptions = ["ignore", "pipe", "pipe"], env?: NodeJS.ProcessEnv): Spawned {
  const child = spawn(command, args, { stdio, env: env ?? process.env });
  track(child);
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr = (stderr + chunk.toString("utf8")).slice(-4000);
  });
  const done = new Promise<void>((resolve, reject) => {
    child.on("error", (error) => reject(new ProgramError(`cannot run ${command}: ${error.message}`, null)));
    child.on("close", (code, signal) => (code === 0 ? resolve() : reject(failure(command, code, signal, stderr))));
  });
  return { child, done };
}

/** A program's stdout, once it has succeeded; rejects with a ProgramError like spawnChecked's `done`. */
export async function run(command: string, args: string[], env?: NodeJS.ProcessEnv): Promise<string> {
  // exec: the shell becomes the program, so the pid (and a kill) is the program's.
  const program = $({ quiet: true, nothrow: true, env: env ?? process.env, stdio: ["ignore", "pipe", "pipe"] })`exec ${command} ${args}`;
  if (program.child) track(program.child);
  const output = await program;
  const notRun = whyNotRun(output);
  if (notRun) throw new ProgramError(`cannot run ${command}: ${notRun}`, null);
  if (output.exitCode !== 0) throw failure(command, output.exitCode, output.signal, output.stderr);
  return output.stdout;
}

/** Why zx could not start the program at all (not found, not executable), or undefined when it ran. */
export function whyNotRun(output: ProcessOutput): string | undefined {
  if (output.cause) return output.cause.message;
  // 126 and 127: the shell found nothing it could run; its last line names the program.
  if (output.exitCode === 126 || output.exitCode === 127) return output.stderr.trim().split("\n").pop()!.replace(/^.*?: line \d+: (exec: )?/, "");
  return undefined;
}

// Child processes (zstd, tar, mkfifo, rclone) with argv arrays only: nothing here goes through a
// shell, so no value is ever interpreted by one. `done` rejects with the tail of stderr.
import { spawn, type ChildProcess, type StdioOptions } from "node:child_process";

export interface Spawned {
  child: ChildProcess;
  done: Promise<void>;
}

/** Programs still running; killed when composure exits (on a signal, say) so that none is left waiting on a FIFO. */
const running = new Set<ChildProcess>();
let killOnExit = false;

export function spawnChecked(command: string, args: string[], stdio: StdioOptions = ["ignore", "pipe", "pipe"], env?: NodeJS.ProcessEnv): Spawned {
  const child = spawn(command, args, { stdio, env: env ?? process.env });
  running.add(child);
  child.on("exit", () => running.delete(child));
  child.on("error", () => running.delete(child));
  if (!killOnExit) {
    killOnExit = true;
    process.on("exit", () => running.forEach((program) => program.kill("SIGKILL")));
  }
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr = (stderr + chunk.toString("utf8")).slice(-4000);
  });
  const done = new Promise<void>((resolve, reject) => {
    child.on("error", (error) => reject(new Error(`cannot run ${command}: ${error.message}`)));
    child.on("close", (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`${command} ${signal ? `was killed by ${signal}` : `exited with ${code}`}${stderr.trim() ? `: ${stderr.trim()}` : ""}`));
    });
  });
  return { child, done };
}

export async function run(command: string, args: string[]): Promise<string> {
  const spawned = spawnChecked(command, args, ["ignore", "pipe", "pipe"]);
  let stdout = "";
  spawned.child.stdout?.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")));
  await spawned.done;
  return stdout;
}

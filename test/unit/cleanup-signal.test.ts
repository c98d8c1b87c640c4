// A signal that arrives while a service is being stopped (prepare in flight) must still restart
// it: the cleanup stack waits for the in-flight prepare, then runs its undo step, then exits.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import path from "node:path";
import { describe, test } from "node:test";

const cleanupModule = path.resolve(import.meta.dirname, "../../scripts/lib/pipeline/cleanup.ts");

describe("cleanup stack and signals", () => {
  test("SIGTERM during prepare waits for it and runs the undo step it returns before exiting 143", async () => {
    const script = `
      import { CleanupStack } from ${JSON.stringify(cleanupModule)};
      const stack = new CleanupStack();
      stack.releaseOnSignals();
      const preparing = new Promise((resolve) => setTimeout(() => {
        console.log("stopped");
        resolve(async () => console.log("restarted"));
      }, 800));
      console.log("stopping");
      await stack.pushWhenReady("release db", preparing);
      await new Promise((resolve) => setTimeout(resolve, 60_000)); // the capture
    `;
    const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk;
      if (stdout.includes("stopping") && !child.killed) child.kill("SIGTERM");
    });
    const code = await new Promise<number | null>((resolve) => child.on("close", (exitCode) => resolve(exitCode)));
    assert.equal(code, 143);
    assert.deepEqual(stdout.trim().split("\n"), ["stopping", "stopped", "restarted"]);
  });
});

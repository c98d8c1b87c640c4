// A killed run whose parent does not reap it (PID 1 of some containers) stays a zombie: its
// locks and folders must count as abandoned all the same.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import os from "node:os";
import { test } from "node:test";
import { pidHasEnded, processIsGone, startTicksOf } from "../../scripts/lib/process-identity.ts";

/** A `sleep 30` whose own child has exited unreaped (sleep never waits for it): that child is a zombie. */
async function withZombie(body: (zombie: number) => void): Promise<void> {
  const parent = spawn("sh", ["-c", "sleep 0 & exec sleep 30"], { stdio: "ignore" });
  try {
    let zombie: number | undefined;
    for (let attempt = 0; attempt < 100 && zombie === undefined; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      const children = readFileSync(`/proc/${parent.pid}/task/${parent.pid}/children`, "utf8").trim().split(" ").filter(Boolean).map(Number);
      zombie = children.find((pid) => readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.startsWith("Z"));
    }
    assert.ok(zombie, "the child became a zombie");
    body(zombie);
  } finally {
    parent.kill("SIGKILL");
  }
}

test("a zombie has ended; a live process, or one with other start ticks, is told apart", async () => {
  await withZombie((zombie) => {
    assert.equal(pidHasEnded(zombie), true);
    assert.equal(processIsGone({ host: os.hostname(), pid: zombie, startTicks: startTicksOf(zombie) }), true, "a zombie's lock is abandoned");
  });
  assert.equal(pidHasEnded(process.pid), false);
  assert.equal(processIsGone({ host: os.hostname(), pid: process.pid, startTicks: startTicksOf(process.pid) }), false, "this process is alive");
  assert.equal(processIsGone({ host: os.hostname(), pid: process.pid, startTicks: "1" }), true, "a reused pid is another process");
  assert.equal(processIsGone({ host: "another-host", pid: process.pid, startTicks: "1" }), false, "another host's process cannot be judged here");
});

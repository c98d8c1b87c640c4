// FIFO folders: removing one releases a zstd still waiting to open the FIFO (a run ended before
// its transfer); the folders of a process killed with SIGKILL are removed the same way by the
// next command, while folders of live processes stay.
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, test } from "node:test";
import { createPipeDir, removeAbandonedPipeDirs } from "../../scripts/lib/docker/pipe-dir.ts";

/** zstd reading the FIFO, as a capture starts it; resolves with its exit code, or "still waiting" after 5 s. */
function zstdOn(fifo: string, output: string) {
  const zstd = spawn("zstd", ["-q", "-f", "-o", output, "--", fifo], { stdio: "ignore" });
  const ended = new Promise<number | null>((resolve) => zstd.on("exit", (code) => resolve(code)));
  return { zstd, end: () => Promise.race([ended, new Promise((resolve) => setTimeout(() => resolve("still waiting"), 5000))]) };
}

describe("pipe folders", () => {
  test("removing a pipe folder releases the zstd waiting on its FIFO", async () => {
    const pipe = await createPipeDir();
    const output = path.join(os.tmpdir(), `composure-pipe-test-${process.pid}-own.zst`);
    const { zstd, end } = zstdOn(pipe.fifo, output);
    try {
      await new Promise((resolve) => setTimeout(resolve, 300)); // zstd is in open() by now
      await pipe.remove();
      assert.equal(existsSync(pipe.dir), false);
      assert.equal(await end(), 0, "zstd was released and ended on an empty stream");
    } finally {
      zstd.kill("SIGKILL");
      rmSync(output, { force: true });
    }
  });

  test("a killed process's folder is removed and its waiting zstd ends; a live one's stays", async () => {
    // Our own pid with a start time that is not ours: a process that is gone (its pid reused).
    const abandoned = mkdtempSync(path.join(os.tmpdir(), `composure-pipe-${process.pid}.1-`));
    const fifo = path.join(abandoned, "stream");
    execFileSync("mkfifo", ["-m", "600", fifo]);
    const output = path.join(os.tmpdir(), `composure-pipe-test-${process.pid}.zst`);
    const { zstd, end } = zstdOn(fifo, output);
    const live = await createPipeDir();
    try {
      await new Promise((resolve) => setTimeout(resolve, 300)); // zstd is in open() by now
      const removed = await removeAbandonedPipeDirs();
      assert.ok(removed >= 1, `removed ${removed}`);
      assert.equal(existsSync(abandoned), false, "the abandoned folder is gone");
      assert.equal(existsSync(live.dir), true, "the live process's folder stays");
      assert.equal(await end(), 0, "zstd was released and ended on an empty stream");
    } finally {
      zstd.kill("SIGKILL");
      await live.remove();
      rmSync(abandoned, { recursive: true, force: true });
      rmSync(output, { force: true });
    }
  });
});

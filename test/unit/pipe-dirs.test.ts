// The FIFO folders of a composure process killed with SIGKILL: the next command releases the zstd
// left waiting to open the FIFO and removes the folder; folders of live processes stay.
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, test } from "node:test";
import { createPipeDir, removeAbandonedPipeDirs } from "../../scripts/lib/archive/tar-transfer.ts";

describe("abandoned pipe folders", () => {
  test("a killed process's folder is removed and its waiting zstd ends; a live one's stays", async () => {
    // Our own pid with a start time that is not ours: a process that is gone (its pid reused).
    const abandoned = mkdtempSync(path.join(os.tmpdir(), `composure-pipe-${process.pid}.1-`));
    const fifo = path.join(abandoned, "stream");
    execFileSync("mkfifo", ["-m", "600", fifo]);
    const output = path.join(os.tmpdir(), `composure-pipe-test-${process.pid}.zst`);
    const zstd = spawn("zstd", ["-q", "-f", "-o", output, "--", fifo], { stdio: "ignore" });
    const ended = new Promise<number | null>((resolve) => zstd.on("exit", (code) => resolve(code)));
    const live = await createPipeDir();
    try {
      await new Promise((resolve) => setTimeout(resolve, 300)); // zstd is in open() by now
      const removed = await removeAbandonedPipeDirs();
      assert.ok(removed >= 1, `removed ${removed}`);
      assert.equal(existsSync(abandoned), false, "the abandoned folder is gone");
      assert.equal(existsSync(live.dir), true, "the live process's folder stays");
      const code = await Promise.race([ended, new Promise((resolve) => setTimeout(() => resolve("still waiting"), 5000))]);
      assert.equal(code, 0, "zstd was released and ended on an empty stream");
    } finally {
      zstd.kill("SIGKILL");
      await live.remove();
      rmSync(abandoned, { recursive: true, force: true });
      rmSync(output, { force: true });
    }
  });
});

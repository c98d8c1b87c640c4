// Programs composure starts do not outlive it: a run that exits on a signal (process.exit from
// the cleanup stack) kills the ones still running, e.g. a zstd still waiting on its FIFO.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, test } from "node:test";

const shellModule = path.resolve(import.meta.dirname, "../../scripts/lib/shell.ts");

describe("child programs", () => {
  test("a program still running when composure exits is killed", () => {
    const script = `
      import { spawnChecked } from ${JSON.stringify(shellModule)};
      const { child } = spawnChecked("sleep", ["30"]);
      child.on("spawn", () => { console.log(child.pid); process.exit(143); });
    `;
    const result = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { encoding: "utf8", timeout: 20_000 });
    assert.equal(result.status, 143, result.stderr);
    const pid = Number(result.stdout.trim());
    assert.ok(pid > 0, `the child's pid: ${result.stdout}`);
    // SIGKILL is delivered at once; the zombie is reaped by init shortly after.
    const deadline = Date.now() + 5000;
    while (existsSync(`/proc/${pid}`) && !/^State:\s+Z/m.test(readStatus(pid)) && Date.now() < deadline) spawnSync("sleep", ["0.05"]);
    assert.ok(!existsSync(`/proc/${pid}`) || /^State:\s+Z/m.test(readStatus(pid)), `sleep (pid ${pid}) still runs after composure exited`);
  });

  test("a program run through zx, still running when composure exits, is killed too", () => {
    const duration = `30.${process.pid}`; // names this test's sleep among the machine's processes
    const script = `
      import { run } from ${JSON.stringify(shellModule)};
      run("sleep", [${JSON.stringify(duration)}]).catch(() => undefined);
      setTimeout(() => process.exit(143), 500);
    `;
    const result = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { encoding: "utf8", timeout: 20_000 });
    assert.equal(result.status, 143, result.stderr);
    const deadline = Date.now() + 5000;
    while (sleepers(duration).length && Date.now() < deadline) spawnSync("sleep", ["0.05"]);
    assert.deepEqual(sleepers(duration), [], `sleep ${duration} still runs after composure exited`);
  });
});

/** Live (not zombie) processes running `sleep <duration>`. */
function sleepers(duration: string): string[] {
  return readdirSync("/proc").filter((entry) => {
    if (!/^\d+$/.test(entry)) return false;
    try {
      return readFileSync(`/proc/${entry}/cmdline`, "utf8") === `sleep\0${duration}\0` && !/^State:\s+Z/m.test(readStatus(Number(entry)));
    } catch {
      return false; // gone meanwhile
    }
  });
}

function readStatus(pid: number): string {
  return spawnSync("cat", [`/proc/${pid}/status`], { encoding: "utf8" }).stdout ?? "";
}

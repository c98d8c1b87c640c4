import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync, existsSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, test } from "node:test";
import { readManifest, writeManifest, type Manifest } from "../../scripts/lib/catalog/manifest.ts";
import { createRunDir, findRun, formatRunId, listRunDirs } from "../../scripts/lib/catalog/runs.ts";
import { dependentsFirst, type ProjectInfo } from "../../scripts/lib/compose/discover.ts";
import { acquireLock } from "../../scripts/lib/pipeline/lock.ts";
import { CleanupStack } from "../../scripts/lib/pipeline/cleanup.ts";
import { shellQuote, swapInStagedLines } from "../../scripts/lib/archive/tar-transfer.ts";

const tmp = () => mkdtempSync(path.join(os.tmpdir(), "composure-unit-"));

function manifestFor(project: string, runId: string, artifactPath = "db/data.tar.zst"): Manifest {
  return {
    format: "composure/1", project, runId, host: "h", startedAt: "2026-01-01T00:00:00Z", finishedAt: "2026-01-01T00:00:01Z", outcome: "success",
    services: [{ name: "db", strategy: "volume", status: "ok", stopped: [], downtimeSeconds: 0, durationSeconds: 1, artifacts: [{ path: artifactPath, bytes: 1, sha256: "a".repeat(64), compression: "zstd" }] }],
  };
}

describe("run catalog", () => {
  test("run ids sort by time and a second run in the same second gets a suffix", async () => {
    const destination = tmp();
    const now = new Date("2026-11-22T01:02:03.456Z");
    assert.equal(formatRunId(now), "20261122T010203Z");
    const first = await createRunDir(destination, "shop", now);
    const second = await createRunDir(destination, "shop", now);
    assert.equal(first.runId, "20261122T010203Z");
    assert.equal(second.runId, "20261122T010203Z-2");
  });

  test("a run without a manifest is incomplete and never chosen as latest", async () => {
    const destination = tmp();
    const older = await createRunDir(destination, "shop", new Date("2026-01-01T00:00:00Z"));
    await writeManifest(older.runDir, manifestFor("shop", older.runId));
    await createRunDir(destination, "shop", new Date("2026-02-01T00:00:00Z"));
    const runs = await listRunDirs(destination, "shop");
    assert.deepEqual(runs.map((run) => run.complete), [false, true]);
    assert.equal((await findRun(destination, "shop", "latest")).manifest.runId, older.runId);
  });

  test("a manifest that is not JSON, of another project, or pointing outside its run is refused", async () => {
    const destination = tmp();
    const run = await createRunDir(destination, "shop", new Date());
    writeFileSync(path.join(run.runDir, "manifest.json"), "{not json");
    await assert.rejects(readManifest(run.runDir, "shop"), /not valid JSON/);
    await writeManifest(run.runDir, manifestFor("other", run.runId));
    await assert.rejects(readManifest(run.runDir, "shop"), /belongs to project other, not shop/);
    await writeManifest(run.runDir, manifestFor("shop", run.runId, "../../etc/passwd"));
    await assert.rejects(readManifest(run.runDir, "shop"), /outside its run directory/);
  });
});

describe("stop order", () => {
  test("dependents stop before what they depend on, transitively", () => {
    const service = (name: string, dependsOn: string[]) => ({ project: "p", name, image: "i", labels: {}, containers: [], dependsOn });
    const project: ProjectInfo = { name: "p", services: [service("db", []), service("api", ["db"]), service("web", ["api"]), service("cron", [])] };
    assert.deepEqual(dependentsFirst(project, ["db"]), ["web", "api", "db"]);
    assert.deepEqual(dependentsFirst(project, ["cron"]), ["cron"]);
  });
});

describe("cleanup stack", () => {
  test("runs every step newest first even when one fails", async () => {
    const stack = new CleanupStack();
    const order: string[] = [];
    stack.push("a", async () => void order.push("a"));
    stack.push("b", async () => {
      order.push("b");
      throw new Error("boom");
    });
    stack.push("c", async () => void order.push("c"));
    const failures = await stack.releaseAll();
    assert.deepEqual(order, ["c", "b", "a"]);
    assert.deepEqual(failures, ["b: boom"]);
  });

  test("a step released early is not run again", async () => {
    const stack = new CleanupStack();
    let runs = 0;
    const release = stack.push("once", async () => void runs++);
    await release();
    await stack.releaseAll();
    assert.equal(runs, 1);
  });
});

describe("run lock", () => {
  test("a lock left by a dead process is taken over", async () => {
    const dir = tmp();
    const child = spawn(process.execPath, ["-e", ""]);
    await new Promise((resolve) => child.on("close", resolve));
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, ".lock"), JSON.stringify({ pid: child.pid, host: os.hostname(), startTicks: "1", command: "backup", since: "then" }));
    const unlock = await acquireLock(dir, "backup", 0);
    assert.equal(JSON.parse(readFileSync(path.join(dir, ".lock"), "utf8")).pid, process.pid);
    await unlock();
    assert.ok(!existsSync(path.join(dir, ".lock")));
  });

  test("a live holder makes the second caller fail after the timeout, naming it", async () => {
    const dir = tmp();
    const unlock = await acquireLock(dir, "backup", 0);
    await assert.rejects(acquireLock(dir, "restore", 1), /locked by pid \d+ on .* \(backup, since/);
    await unlock();
  });
});

describe("restore swap script", () => {
  test("quotes every byte of hostile names for sh", () => {
    assert.equal(shellQuote("a'b\nc $(x)"), `'a'\\''b\nc $(x)'`);
  });

  test("restores directory and symlink mtimes deepest first and the root's owner, mode and mtime", () => {
    const lines = swapInStagedLines("/volume", ".staging", {
      summary: { entries: 3, files: 0, directories: 2, symlinks: 1, hardlinks: 0, dataBytes: 0, archiveBytes: 0 },
      timestamps: [{ name: "d", mtime: 10, type: "directory" }, { name: "d/l", mtime: 20, type: "symlink" }],
      root: { name: ".", type: "directory", size: 0, mode: 0o750, uid: 999, gid: 998, mtime: 30, linkName: "" },
    });
    const touches = lines.filter((line) => line.startsWith("touch"));
    assert.deepEqual(touches, ["touch -h -c -d @20 -- 'd/l'", "touch -h -c -d @10 -- 'd'", "touch -c -d @30 ."]);
    assert.ok(lines.includes("chown 999:998 ."));
    assert.ok(lines.includes("chmod 750 ."));
  });
});

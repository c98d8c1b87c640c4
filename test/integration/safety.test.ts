// Acceptance of the foundation's safety: verify tells corruptions apart, restore refuses
// hostile archives and unknown runs without touching anything, the run lock serialises runs,
// and a run killed with SIGKILL leaves nothing stopped and nothing listed.
import assert from "node:assert/strict";
import { cpSync, existsSync, readFileSync, rmSync, truncateSync, writeFileSync, openSync, readSync, writeSync, closeSync, mkdirSync } from "node:fs";
import { createHash } from "node:crypto";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { backupsOf, busyboxProject, composure, requireDocker, sh, snapshotVolume, tempDir, inVolumes, waitFor } from "../support/composure.ts";

const project = busyboxProject("cmpt-safe", { db: ["data:/data"] });
const destination = tempDir("safety-dest");
const env = { PROJECT: project.name, DESTINATION: destination };
const runsDir = () => path.join(destination, project.name);
const { runIds } = backupsOf(runsDir());

async function backupOnce(): Promise<string> {
  const outcome = await composure("backup", env);
  assert.equal(outcome.code, 0, outcome.stderr);
  return runIds().at(-1)!;
}

/** A copy of `runId` in a destination of its own, to damage without harming the original. */
function copyRun(runId: string): { dest: string; runDir: string } {
  const dest = tempDir("safety-copy");
  mkdirSync(path.join(dest, project.name), { recursive: true });
  cpSync(path.join(runsDir(), runId), path.join(dest, project.name, runId), { recursive: true });
  return { dest, runDir: path.join(dest, project.name, runId) };
}

describe("safety of verify, restore and the run lock", { timeout: 600_000 }, () => {
  let runId: string;
  before(async () => {
    await requireDocker();
    await project.up();
    await inVolumes([`${project.volume("data")}:/data`], "dd if=/dev/urandom of=/data/blob bs=1M count=20 2>/dev/null; echo hello > /data/greeting");
    runId = await backupOnce();
  });
  after(async () => {
    await project.down().catch(() => undefined);
  });

  test("verify passes on an intact run", async () => {
    const outcome = await composure("verify", { ...env, RUN: runId });
    assert.equal(outcome.code, 0, outcome.stderr);
    assert.match(outcome.stderr, /verification passed/);
  });

  test("verify tells a flipped byte, a truncated archive and a missing manifest apart", async () => {
    const flipped = copyRun(runId);
    const archive = path.join(flipped.runDir, "db", "data.tar.zst");
    const fd = openSync(archive, "r+");
    const byte = Buffer.alloc(1);
    readSync(fd, byte, 0, 1, 5000);
    writeSync(fd, Buffer.from([byte[0] ^ 0xff]), 0, 1, 5000);
    closeSync(fd);
    const flippedResult = await composure("verify", { ...env, DESTINATION: flipped.dest, RUN: runId });
    assert.equal(flippedResult.code, 1);
    assert.match(flippedResult.stderr, /checksum mismatch/);

    const truncated = copyRun(runId);
    truncateSync(path.join(truncated.runDir, "db", "data.tar.zst"), 4096);
    const truncatedResult = await composure("verify", { ...env, DESTINATION: truncated.dest, RUN: runId });
    assert.equal(truncatedResult.code, 1);
    assert.match(truncatedResult.stderr, /truncated: 4096 of \d+ bytes/);

    const unsealed = copyRun(runId);
    rmSync(path.join(unsealed.runDir, "manifest.json"));
    const unsealedResult = await composure("verify", { ...env, DESTINATION: unsealed.dest, RUN: runId });
    assert.equal(unsealedResult.code, 1);
    assert.match(unsealedResult.stderr, /has no manifest\.json: it is incomplete/);
  });

  test("restore of an unknown run or service fails clearly and stops nothing", async () => {
    const startedBefore = await project.startedAt("db");
    const unknownRun = await composure("restore", { ...env, RUN: "20000101T000000Z", FORCE: "1" });
    assert.equal(unknownRun.code, 2);
    assert.match(unknownRun.stderr, /run 20000101T000000Z of project .* not found/);
    const unknownService = await composure("restore", { ...env, SERVICE: "dbx", FORCE: "1" });
    assert.equal(unknownService.code, 2);
    assert.match(unknownService.stderr, /backup of service dbx \(did you mean "db"\?\)/);
    assert.equal(await project.startedAt("db"), startedBefore);
  });

  for (const [label, build] of hostileArchives()) {
    test(`restore refuses an archive holding ${label} and leaves the volume untouched`, async () => {
      const before = await snapshotVolume(project.volume("data"));
      const hostile = copyRun(runId);
      const archive = path.join(hostile.runDir, "db", "data.tar.zst");
      const work = tempDir("hostile");
      await build(work, path.join(work, "evil.tar"));
      await sh("zstd", ["-q", "-f", "-o", archive, path.join(work, "evil.tar")]);
      reseal(hostile.runDir, archive);
      const outcome = await composure("restore", { ...env, DESTINATION: hostile.dest, RUN: runId, FORCE: "1", NO_RESCUE: "1" });
      assert.equal(outcome.code, 1, outcome.stderr);
      assert.match(outcome.stderr, /unsafe entry/);
      assert.equal(await snapshotVolume(project.volume("data")), before);
      assert.ok(await project.running("db"));
    });
  }

  test("a second backup waits for the lock and then exits naming the holder", async () => {
    // A failpoint holds the first run (and its lock) until the second one has given up.
    const marker = path.join(tempDir("lock-failpoint"), "reached");
    const holder = composure("backup", { ...env, COMPOSURE_FAILPOINT: "backup:capture", COMPOSURE_FAILPOINT_MARKER: marker });
    await waitFor("the failpoint", () => existsSync(marker), 60_000, 20);
    const second = await composure("backup", { ...env, LOCK_TIMEOUT: "1" });
    writeFileSync(`${marker}.continue`, "");
    assert.equal(second.code, 3, second.stderr);
    assert.match(second.stderr, /project is locked by pid \d+ .*\(backup/);
    assert.equal((await holder).code, 0);
  });

  test("after kill -9 in the middle of a stop-mode backup the next backup recovers everything", async () => {
    const before = new Set(runIds());
    const victim = composure("backup", env);
    await waitFor("the stop journal", () => existsSync(path.join(runsDir(), ".stopped.json")), 60_000, 20);
    process.kill(victim.pid!, "SIGKILL");
    await victim;
    const next = await composure("backup", env);
    assert.equal(next.code, 0, next.stderr);
    assert.match(next.stderr, /taking over a stale lock/);
    assert.ok(await project.running("db"), "db runs again");
    const listed = JSON.parse((await composure("list", env, ["--json"])).stdout).map((row: { run: string }) => row.run);
    const incomplete = runIds().filter((id) => !before.has(id) && !existsSync(path.join(runsDir(), id, "manifest.json")));
    assert.equal(incomplete.length, 1, "the killed run left an incomplete run directory");
    assert.ok(!listed.includes(incomplete[0]), "the incomplete run is not listed");
  });
});

/** Rewrites the manifest's size and sha256 of `archive` so only the archive's content is hostile. */
function reseal(runDir: string, archive: string): void {
  const file = path.join(runDir, "manifest.json");
  const manifest = JSON.parse(readFileSync(file, "utf8"));
  const content = readFileSync(archive);
  for (const service of manifest.services) {
    for (const artifact of service.artifacts) {
      if (path.join(runDir, artifact.path) !== archive) continue;
      artifact.bytes = content.length;
      artifact.sha256 = createHash("sha256").update(content).digest("hex");
    }
  }
  writeFileSync(file, JSON.stringify(manifest));
}

/** Archives made with GNU tar that a naive `tar x` would let escape the volume. */
function hostileArchives(): [string, (work: string, tarFile: string) => Promise<void>][] {
  return [
    ["a ../ path", async (work, tarFile) => {
      mkdirSync(path.join(work, "inner"));
      writeFileSync(path.join(work, "x"), "escaped\n");
      await sh("tar", ["-C", path.join(work, "inner"), "-cPf", tarFile, "../x"]);
    }],
    ["an absolute path", async (work, tarFile) => {
      writeFileSync(path.join(work, "abs"), "absolute\n");
      await sh("tar", ["-cPf", tarFile, path.join(work, "abs")]);
    }],
    ["a file written through a symlink that leaves the volume", async (work, tarFile) => {
      mkdirSync(path.join(work, "one"));
      mkdirSync(path.join(work, "two", "evil"), { recursive: true });
      await sh("ln", ["-s", "/etc", path.join(work, "one", "evil")]);
      writeFileSync(path.join(work, "two", "evil", "passwd"), "owned\n");
      await sh("tar", ["-C", path.join(work, "one"), "-cf", tarFile, "evil"]);
      await sh("tar", ["-C", path.join(work, "two"), "-rf", tarFile, "evil/passwd"]);
    }],
  ];
}

// The fault suite: composure killed with SIGKILL in every phase of a stop-mode backup, a restore
// and a prune; a full destination disk; a container removed during its capture; a volume used
// by a container outside the project; hostile label values. After each one: every service runs,
// no incomplete run is listed or used, and no data is lost. docs/reliability.md lists them.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync, renameSync, writeFileSync, mkdirSync } from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { backupsOf, besideData, busyboxProject, busyboxImage, composure, docker, inVolumes, requireDocker, snapshotVolume, tempDir, waitFor } from "../support/composure.ts";
import { resticOf } from "../support/restic.ts";

const project = busyboxProject("cmpt-faults", { db: ["data:/data"], web: ["site:/site"] });

const destination = tempDir("faults-dest");
const remoteDir = tempDir("faults-remote");
const config = path.join(tempDir("faults-config"), "composure.yml");
writeFileSync(config, `remote:\n  target: "${remoteDir}"\n`);
const env = { PROJECT: project.name, DESTINATION: destination, CONFIG: config };
const runsDir = () => path.join(destination, project.name);
const runIds = () => (existsSync(runsDir()) ? backupsOf(runsDir()).runIds() : []);
const listed = async () => JSON.parse((await composure("list", env, ["--json"])).stdout).map((row: { run: string }) => row.run) as string[];

const waitForFile = (file: string) => waitFor(file, () => existsSync(file), 120_000, 25);

/** Runs `script` until it reaches failpoint `name`, then kills it with SIGKILL. */
async function killAt(script: string, name: string, extra: Record<string, string> = {}): Promise<void> {
  const marker = path.join(tempDir("failpoint"), "reached");
  const child = composure(script, { ...env, ...extra, COMPOSURE_FAILPOINT: name, COMPOSURE_FAILPOINT_MARKER: marker });
  await waitForFile(marker);
  process.kill(child.pid!, "SIGKILL");
  await child;
}

async function assertEverythingRuns(): Promise<void> {
  assert.ok(await project.running("db"), "db runs");
  assert.ok(await project.running("web"), "web runs");
}

describe("fault suite", { timeout: 900_000 }, () => {
  let dataBefore: string;
  before(async () => {
    await requireDocker();
    await project.up();
    await inVolumes([`${project.volume("data")}:/data`, `${project.volume("site")}:/site`], "dd if=/dev/urandom of=/data/blob bs=1M count=4 2>/dev/null; echo hello > /data/hello; echo page > /site/index.html");
    dataBefore = await snapshotVolume(project.volume("data"));
    const first = await composure("backup", env);
    assert.equal(first.code, 0, first.stderr);
  });
  after(async () => {
    await project.down().catch(() => undefined);
  });

  for (const phase of ["prepare", "capture", "release", "seal", "upload"]) {
    test(`kill -9 in the ${phase} phase of a stop-mode backup: the next backup recovers, nothing incomplete is listed`, async () => {
      const before = new Set(runIds());
      await killAt("backup", `backup:${phase}`, { SERVICE: "db" });
      const next = await composure("backup", env);
      assert.equal(next.code, 0, next.stderr);
      assert.match(next.stderr, /taking over a stale lock/);
      await assertEverythingRuns();
      const killedRun = runIds().filter((id) => !before.has(id))[0];
      const shown = await listed();
      if (phase === "upload") {
        assert.ok(shown.includes(killedRun), "a sealed run is complete even if its upload was cut");
        const sync = await composure("sync", env);
        assert.equal(sync.code, 0, sync.stderr);
        assert.ok(existsSync(path.join(remoteDir, project.name, killedRun, "manifest.json")));
      } else {
        assert.ok(!shown.includes(killedRun), "the killed run is not listed");
        const verifyKilled = await composure("verify", { ...env, RUN: killedRun });
        assert.equal(verifyKilled.code, 1, "verify refuses the incomplete run");
      }
      assert.equal((await composure("verify", env)).code, 0, "the newest run verifies");
      assert.equal(await snapshotVolume(project.volume("data")), dataBefore);
    });
  }

  for (const phase of ["stop", "extract", "swap"]) {
    test(`kill -9 in the ${phase} phase of a restore: services run again after the next command, the volume holds its old data`, async () => {
      await killAt("restore", `restore:${phase}`, { SERVICE: "db", FORCE: "1", NO_RESCUE: "1" });
      const next = await composure("backup", { ...env, SERVICE: "web" });
      assert.equal(next.code, 0, next.stderr);
      await assertEverythingRuns();
      assert.equal(await snapshotVolume(project.volume("data")), dataBefore, "no staging folder left, old content intact");
      assert.deepEqual(await besideData(project.volume("data")), [], "nothing left beside the volume's _data");
    });
  }

  test("a restore killed between its two renames (the volume's _data moved aside): the next command puts it back before starting the service", async () => {
    await killAt("restore", "restore:swap", { SERVICE: "db", FORCE: "1", NO_RESCUE: "1" });
    // Do the swap's first rename by hand, as if the kill had come right after it.
    const journal = JSON.parse(readFileSync(path.join(runsDir(), ".stopped.json"), "utf8")) as { staging: { beside?: string; old?: string }[] };
    const [entry] = journal.staging;
    assert.ok(entry?.beside && entry.old, `a beside restore is journaled with its rename: ${JSON.stringify(journal)}`);
    renameSync(path.join(entry.beside, "_data"), path.join(entry.beside, entry.old));
    const next = await composure("backup", { ...env, SERVICE: "web" });
    assert.equal(next.code, 0, next.stderr);
    await assertEverythingRuns();
    assert.equal(await snapshotVolume(project.volume("data")), dataBefore, "the old content is back in _data");
    assert.deepEqual(await besideData(project.volume("data")), []);
  });

  test("kill -9 during prune deletes nothing half-way and the next prune completes", async () => {
    const pruneConfig = path.join(tempDir("faults-prune"), "composure.yml");
    writeFileSync(pruneConfig, "retention:\n  local: { keep_last: 2 }\n  require_verified: false\n"); // these runs were never verified
    const before = runIds();
    await killAt("prune", "prune:delete", { CONFIG: pruneConfig });
    assert.deepEqual(runIds(), before);
    const prune = await composure("prune", { ...env, CONFIG: pruneConfig });
    assert.equal(prune.code, 0, prune.stderr);
    assert.ok(runIds().length < before.length);
    assert.equal((await composure("verify", env)).code, 0);
    await assertEverythingRuns();
  });

  for (const engine of ["archive", "repository"] as const) test(`a full destination disk (${engine} engine): a clear error, no partial files, services running, earlier runs intact`, async () => {
    const small = tempDir("faults-full");
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=3m", "tmpfs", small]);
    try {
      mkdirSync(path.join(small, "d"));
      const fullEnv = { ...env, DESTINATION: path.join(small, "d"), CONFIG: path.join(tempDir("empty"), "none.yml"), STORAGE: engine };
      writeFileSync(fullEnv.CONFIG, "{}\n");
      const earlier = await composure("backup", { ...fullEnv, SERVICE: "web" });
      assert.equal(earlier.code, 0, earlier.stderr);
      const full = await composure("backup", fullEnv);
      assert.equal(full.code, 1);
      assert.match(full.stderr, /db: backup failed: .*(ENOSPC|no space left)/i);
      const leftovers = readdirSync(path.join(small, "d"), { recursive: true }).map(String).filter((name) => name.endsWith(".partial"));
      assert.deepEqual(leftovers, []);
      await assertEverythingRuns();
      // Every run that stored something still verifies. The full run may store nothing (both
      // services writing side by side can hit the full disk): verify rightly fails such a run.
      const sealed = JSON.parse((await composure("list", fullEnv, ["--json"])).stdout) as { run: string; bytes: number }[];
      assert.ok(sealed.some((row) => row.bytes > 0), `the earlier run is listed: ${JSON.stringify(sealed)}`);
      for (const row of sealed.filter((entry) => entry.bytes > 0)) {
        const v = await composure("verify", { ...fullEnv, RUN: row.run });
        assert.equal(v.code, 0, `run ${row.run} on the full disk still verifies: ${v.stderr}`);
      }
      if (engine === "repository") await resticOf(fullEnv.DESTINATION, project.name).run("check"); // the repository stays usable
    } finally {
      execFileSync("umount", [small]);
    }
  });

  test("a container removed during its capture: the run reports it and the other service is backed up", async () => {
    const marker = path.join(tempDir("failpoint"), "reached");
    const dbId = await project.containerId("db");
    const child = composure("backup", { ...env, COMPOSURE_FAILPOINT: "backup:capture", COMPOSURE_FAILPOINT_MARKER: marker });
    await waitForFile(marker);
    await docker("rm", "-f", dbId);
    writeFileSync(`${marker}.continue`, "");
    const outcome = await child;
    assert.equal(outcome.code, 1, outcome.stderr);
    assert.match(outcome.stderr, /could not restart .*db/);
    assert.match(outcome.stderr, /web: 1 artifact/);
    await project.up();
    await assertEverythingRuns();
    assert.equal(await snapshotVolume(project.volume("data")), dataBefore);
  });

  test("a volume used by a container outside the project is backed up and that container is left alone, with a warning", async () => {
    const foreign = await docker("run", "-d", "--log-driver", "none", "-v", `${project.volume("data")}:/x:ro`, busyboxImage, "sleep", "100000");
    try {
      const startedBefore = await docker("inspect", "-f", "{{.State.StartedAt}}", foreign);
      const outcome = await composure("backup", { ...env, SERVICE: "db" });
      assert.equal(outcome.code, 0, outcome.stderr);
      assert.match(outcome.stderr, /also used by container .* outside project/);
      assert.equal(await docker("inspect", "-f", "{{.State.StartedAt}}", foreign), startedBefore);
    } finally {
      await docker("rm", "-f", foreign);
    }
  });

  test("label values full of shell metacharacters never reach a shell", async () => {
    // "$$" is Compose's escape for "$": the label value the service gets holds "$(...)".
    const hostile = busyboxProject("cmpt-hostile", { app: ["data:/data"] }, { app: { "composure.exec.pre": '["touch", "/data/a; touch pwned $$(touch pwned2)"]' } });
    await hostile.up();
    try {
      const outcome = await composure("backup", { PROJECT: hostile.name, DESTINATION: tempDir("hostile-dest") });
      assert.equal(outcome.code, 0, outcome.stderr);
      const files = await inVolumes([`${hostile.volume("data")}:/data`], "ls -1 /data");
      assert.deepEqual(files.trim().split("\n"), ["a; touch pwned $(touch pwned2)"]);
      assert.equal(await docker("exec", await hostile.containerId("app"), "sh", "-c", "ls / | grep -c pwned || true"), "0");
      const badTier = busyboxProject("cmpt-badtier", { app: [] }, { app: { "composure.tier": "$$(touch /tmp/composure-pwned)" } });
      await badTier.up();
      try {
        const refused = await composure("backup", { PROJECT: badTier.name, DESTINATION: tempDir("badtier-dest") });
        assert.equal(refused.code, 2, refused.stderr);
        assert.match(refused.stderr, /labels\.tier/);
        assert.ok(!existsSync("/tmp/composure-pwned"));
      } finally {
        await badTier.down();
      }
    } finally {
      await hostile.down();
    }
  });
});

// The repository engine (restic) on a real engine, in a mixed run: service `app` keeps its volume
// in the project's restic repository (label composure.storage), `notes` in archive files. What an
// unchanged or slightly changed second backup adds; list, verify, drill and restore of the mixed
// run; the run carried off-site (WebDAV) and restored on an empty destination; a wrong password;
// a run killed during a repository backup; prune forgetting the snapshots of deleted runs.
import assert from "node:assert/strict";
import { copyFileSync, existsSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { resticOf } from "../support/restic.ts";
import { RcloneServer } from "../support/remotes.ts";
import { busyboxProject, composure, docker, inVolumes, requireDocker, snapshotVolume, tempDir, waitFor } from "../support/composure.ts";

const project = busyboxProject("cmpt-repo", { app: ["files:/files"], notes: ["notes:/notes"] }, { app: { "composure.storage": "repository" } });
const destination = tempDir("repo-dest");
const server = new RcloneServer("webdav", "reposite");
const config = path.join(tempDir("repo-config"), "composure.yml");
writeFileSync(config, 'remote:\n  target: "reposite:offsite"\nstop_timeout_seconds: 5\n');
const env = () => ({ PROJECT: project.name, DESTINATION: destination, CONFIG: config, ...server.clientEnv() });
const volumes = [project.volume("files"), project.volume("notes")];
const { repository, passwordFile, run: restic, snapshotIds } = resticOf(destination, project.name);

interface Artifact {
  path: string;
  bytes: number;
  sha256?: string;
  repository?: { snapshot: string; addedBytes: number };
}
interface ServiceRecord {
  name: string;
  status: string;
  error?: string;
  downtimeSeconds: number;
  artifacts: Artifact[];
}
const manifestOf = (runDir: string): { runId: string; outcome: string; services: ServiceRecord[] } => JSON.parse(readFileSync(path.join(runDir, "manifest.json"), "utf8"));
const runs = async (): Promise<{ run: string; outcome: string }[]> => JSON.parse((await composure("list", env(), ["--json"])).stdout);
const added = (runDir: string) => manifestOf(path.join(destination, project.name, runDir)).services.find((record) => record.name === "app")!.artifacts.reduce((sum, artifact) => sum + artifact.repository!.addedBytes, 0);
const referencedSnapshots = () =>
  readdirSync(path.join(destination, project.name))
    .filter((name) => existsSync(path.join(destination, project.name, name, "manifest.json")))
    .flatMap((name) => manifestOf(path.join(destination, project.name, name)).services.flatMap((record) => record.artifacts.flatMap((artifact) => (artifact.repository ? [artifact.repository.snapshot] : []))))
    .sort();

async function backup(extra: Record<string, string> = {}): Promise<string> {
  const outcome = await composure("backup", { ...env(), ...extra });
  assert.equal(outcome.code, 0, outcome.stderr);
  return (await runs())[0].run;
}

describe("repository engine", { timeout: 900_000 }, () => {
  before(async () => {
    await requireDocker();
    await server.start();
    await project.up();
    await inVolumes(
      [`${volumes[0]}:/files`, `${volumes[1]}:/notes`],
      `set -e; cd /files; mkdir small; i=0; while [ $i -lt 10000 ]; do echo "file $i" > small/f$i; i=$((i+1)); done
       dd if=/dev/urandom of=big.bin bs=1M count=30 2>/dev/null; echo pair > hard1; ln hard1 hard2; ln -s big.bin link
       echo note > /notes/note.txt; chown -R 999:999 /notes`,
    );
  });
  after(async () => {
    await project.down().catch(() => undefined);
    await server.stop();
  });

  test("a mixed run keeps app in the repository and notes in an archive; an unchanged second backup adds under 1%, one changed file less than its size + 1 MB", async () => {
    const first = await backup();
    const records = manifestOf(path.join(destination, project.name, first)).services;
    const [app, notes] = ["app", "notes"].map((name) => records.find((record) => record.name === name)!);
    assert.match(app.artifacts[0].repository?.snapshot ?? "", /^[0-9a-f]{64}$/, "app's volume is a restic snapshot");
    assert.equal(notes.artifacts[0].path, "notes/notes.tar.zst", "notes is an archive file");
    assert.match(notes.artifacts[0].sha256 ?? "", /^[0-9a-f]{64}$/);
    const keys = readdirSync(path.join(repository, "keys"));
    assert.equal(keys.length, 1, "restic's first key was replaced");
    assert.equal(JSON.parse(readFileSync(path.join(repository, "keys", keys[0]), "utf8")).N, 1024, "composure made the password: the key's scrypt is light");
    const firstAdded = added(first);
    assert.ok(firstAdded > 30 * 1024 ** 2 * 0.9, `the first backup stored the data (${firstAdded} bytes)`);

    const second = await backup();
    assert.ok(added(second) < firstAdded * 0.01, `an unchanged second backup adds ${added(second)} bytes, under 1% of ${firstAdded}`);

    await inVolumes([`${volumes[0]}:/files`], "dd if=/dev/urandom of=/files/small/f5000 bs=1k count=200 2>/dev/null");
    const third = await backup();
    assert.ok(added(third) < 200 * 1024 + 1024 ** 2, `after changing one file of 10,000 (200 KiB) the run adds ${added(third)} bytes`);
    const metrics = readFileSync(path.join(os.tmpdir(), "composure-test-metrics", `composure-${project.name}.prom`), "utf8");
    assert.match(metrics, new RegExp(`composure_last_added_bytes\\{project="${project.name}",service="app",tier="medium"\\} ${added(third)}\\n`));
    const size = Number(new RegExp(`composure_repository_bytes\\{project="${project.name}"\\} (\\d+)`).exec(metrics)?.[1]);
    assert.ok(size >= firstAdded, `the repository's size is exported (${size})`);
  });

  test("list, verify (restic check and every snapshot) and a restore drill work on the mixed run", async () => {
    assert.deepEqual((await runs()).map((run) => run.outcome), ["success", "success", "success"]);
    const verify = await composure("verify", { ...env(), RUN: "all" });
    assert.equal(verify.code, 0, verify.stderr);
    assert.match(verify.stderr, /ok {6}\S+\/repository: restic check of \S+ passed/);
    assert.match(verify.stderr, /ok {6}\S+\/app\/files/);
    const drill = await composure("verify", { ...env(), DEEP: "1" });
    assert.equal(drill.code, 0, drill.stderr);
    assert.match(drill.stderr, /restic check of \S+ passed \(read back 5% of the data\)/);
    assert.match(drill.stderr, /drill ok +\S+\/app \(volume\)/);
    assert.match(drill.stderr, /drill ok +\S+\/notes \(volume\)/);
  });

  test("damaged volumes of both engines are restored identical, with a rescue run", async () => {
    const expected = await Promise.all(volumes.map(snapshotVolume));
    await inVolumes([`${volumes[0]}:/files`, `${volumes[1]}:/notes`], "rm -rf /files/small /files/hard2; echo damaged > /notes/note.txt");
    const restore = await composure("restore", { ...env(), FORCE: "1" });
    assert.equal(restore.code, 0, restore.stderr);
    assert.match(restore.stderr, /restored from the repository/);
    assert.deepEqual(await Promise.all(volumes.map(snapshotVolume)), expected);
    assert.ok(await project.running("app"));
  });

  test("a wrong repository password fails backup and restore with a message naming the password file; nothing is touched", async () => {
    const password = readFileSync(passwordFile, "utf8");
    const kept = path.join(tempDir("kept-password"), "password");
    copyFileSync(passwordFile, kept);
    const before = await snapshotVolume(volumes[0]);
    writeFileSync(passwordFile, "not the password\n");
    try {
      const failed = await composure("backup", env());
      assert.equal(failed.code, 1);
      assert.match(failed.stderr, new RegExp(`does not open with the password in ${passwordFile.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`));
      assert.ok(!failed.stderr.includes(password.trim()) && !failed.stdout.includes(password.trim()), "the password is in no output");
      const record = manifestOf(path.join(destination, project.name, (await runs())[0].run)).services.find((entry) => entry.name === "app")!;
      assert.equal(record.status, "failed");
      assert.deepEqual(record.artifacts, []);
      assert.ok(await project.running("app"), "app was not left stopped");
      const restore = await composure("restore", { ...env(), SERVICE: "app", FORCE: "1" });
      assert.equal(restore.code, 1);
      assert.match(restore.stderr, /does not open with the password in/);
      assert.equal(await snapshotVolume(volumes[0]), before, "the volume is untouched");
    } finally {
      copyFileSync(kept, passwordFile);
    }
  });

  test("kill -9 during a repository backup: the next backup clears the stale lock, restic check passes, prune leaves only referenced snapshots", async () => {
    await inVolumes([`${volumes[0]}:/files`], "dd if=/dev/urandom of=/files/slow.bin bs=1M count=400 2>/dev/null");
    const killed = composure("backup", { ...env(), SERVICE: "app" });
    await waitFor("restic's lock in the repository", () => readdirSync(path.join(repository, "locks")).length > 0, 120_000, 50);
    killed.kill("SIGKILL");
    await killed;
    // The host went down with it: its restic (killed with composure) and any helper are gone too.
    const helpers = (await docker("ps", "-aq", "--filter", `label=composure.helper=${project.name}`)).split("\n").filter(Boolean);
    if (helpers.length) await docker("rm", "-f", ...helpers);
    assert.ok(readdirSync(path.join(repository, "locks")).length > 0, "the killed run's lock is left");
    await inVolumes([`${volumes[0]}:/files`], "rm -f /files/slow.bin");

    const next = await composure("backup", env());
    assert.equal(next.code, 0, next.stderr);
    assert.match(next.stderr, /removed the repository lock of a composure run that is gone/);
    assert.deepEqual(readdirSync(path.join(repository, "locks")), []);
    await restic("check");

    writeFileSync(config, 'remote:\n  target: "reposite:offsite"\nstop_timeout_seconds: 5\nretention:\n  local: { keep_last: 1 }\n  remote: { keep_last: 1 }\n  require_verified: false\n'); // these runs were never verified
    const prune = await composure("prune", env());
    assert.equal(prune.code, 0, prune.stderr);
    assert.match(prune.stderr, /forgot \d+ snapshot\(s\) no kept run refers to/);
    assert.deepEqual(await snapshotIds(), referencedSnapshots(), "only the snapshots kept runs refer to are left");
    await restic("check");
  });

  test("the run off-site (WebDAV) restores onto an empty destination with the kept password file; prune FROM=remote forgets snapshots there", async () => {
    const expected = await Promise.all(volumes.map(snapshotVolume));
    const latest = (await runs())[0].run;
    const onRemote = (await composure("list", { ...env(), FROM: "remote" }, ["--json"])).stdout;
    assert.ok(JSON.parse(onRemote).some((run: { run: string }) => run.run === latest), "the latest run is off-site");
    await project.down();
    const fresh = tempDir("repo-fresh-dest");
    copyFileSync(passwordFile, path.join(fresh, ".repository-password")); // the copy the operator kept
    const restore = await composure("restore", { ...env(), DESTINATION: fresh, FROM: "remote", FORCE: "1" });
    assert.equal(restore.code, 0, restore.stderr);
    assert.match(restore.stderr, /downloading the repository of project/);
    assert.deepEqual(await Promise.all(volumes.map(snapshotVolume)), expected);
    await project.up();

    const prune = await composure("prune", { ...env(), FROM: "remote" });
    assert.equal(prune.code, 0, prune.stderr);
    assert.match(prune.stderr, /repository rclone:\S+: forgot \d+ snapshot\(s\)/);
  });
});

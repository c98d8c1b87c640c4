// Off-site copies end to end: a backup lands on a real WebDAV server byte for byte; with the
// local backups gone, restore FROM=remote brings the data back; a server killed during an
// upload leaves the local run intact and marked, and `make sync` completes it later; age
// encryption keeps a marker unreadable on the remote and a wrong identity touches nothing.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync, readdirSync, rmSync, writeFileSync, existsSync, statSync } from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { busyboxProject, composure, inVolumes, requireDocker, snapshotVolume, tempDir } from "../support/composure.ts";
import { RcloneServer } from "../support/remotes.ts";

const project = busyboxProject("cmpt-offsite", { app: ["data:/data"] });
const server = new RcloneServer("webdav", "offsiteweb");
const marker = `composure-marker-${process.pid}-do-not-leak`;

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => path.join(entry.parentPath ?? (entry as unknown as { path: string }).path, entry.name));
}

const sha256 = (file: string) => createHash("sha256").update(readFileSync(file)).digest("hex");

function configFile(extra = ""): string {
  const file = path.join(tempDir("offsite-config"), "composure.yml");
  writeFileSync(file, `remote:\n  target: "offsiteweb:store"\n  check: hash\n${extra}`);
  return file;
}

describe("off-site copies through rclone on a real WebDAV server", { timeout: 600_000 }, () => {
  before(async () => {
    await requireDocker();
    await server.start();
    await project.up();
    await inVolumes([`${project.volume("data")}:/data`], `echo ${marker} > /data/marker.txt; dd if=/dev/urandom of=/data/blob bs=1M count=12 2>/dev/null`);
  });
  after(async () => {
    await project.down().catch(() => undefined);
    await server.stop();
  });

  const envWith = (destination: string, config: string, extra: Record<string, string> = {}) => ({
    PROJECT: project.name, DESTINATION: destination, CONFIG: config, COMPOSURE_RCLONE_BACKOFF: "0.2", ...server.clientEnv(), ...extra,
  });

  test("a backup is uploaded with identical bytes, and restore FROM=remote works with no local backups", async () => {
    const destination = tempDir("offsite-dest");
    const env = envWith(destination, configFile());
    const expected = await snapshotVolume(project.volume("data"));
    const backup = await composure("backup", env);
    assert.equal(backup.code, 0, backup.stderr);
    const [runId] = readdirSync(path.join(destination, project.name)).filter((name) => /^\d{8}T/.test(name));
    const localRun = path.join(destination, project.name, runId);
    const remoteRun = path.join(server.dir, "store", project.name, runId);
    for (const file of filesUnder(localRun).filter((file) => !file.endsWith("upload.json"))) {
      assert.equal(sha256(path.join(remoteRun, path.relative(localRun, file))), sha256(file), `${file} differs on the remote`);
    }
    const remoteList = await composure("list", { ...env, FROM: "remote" }, ["--json"]);
    assert.deepEqual(JSON.parse(remoteList.stdout).map((row: { run: string }) => row.run), [runId]);

    rmSync(destination, { recursive: true, force: true });
    await inVolumes([`${project.volume("data")}:/data`], "rm -rf /data/*; echo lost > /data/lost");
    const restore = await composure("restore", { ...env, FROM: "remote", FORCE: "1", NO_RESCUE: "1" });
    assert.equal(restore.code, 0, restore.stderr);
    assert.equal(await snapshotVolume(project.volume("data")), expected);
    assert.ok(await project.running("app"));
  });

  test("a WebDAV server killed during the upload leaves the run local and marked; make sync completes it", async () => {
    const destination = tempDir("offsite-flap");
    const env = envWith(destination, configFile("  bwlimit: 2M\n"));
    const storeDir = path.join(server.dir, "store", project.name);
    const earlier = new Set(existsSync(storeDir) ? readdirSync(storeDir) : []);
    const backup = composure("backup", env);
    // Kill the server once the upload of this run has started writing.
    const deadline = Date.now() + 60_000;
    const started = () => existsSync(storeDir) && readdirSync(storeDir).some((name) => !earlier.has(name));
    while (!started() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    await server.stop();
    const outcome = await backup;
    assert.equal(outcome.code, 1, outcome.stderr);
    assert.match(outcome.stderr, /make sync/);
    const [runId] = readdirSync(path.join(destination, project.name)).filter((name) => /^\d{8}T/.test(name));
    const state = JSON.parse(readFileSync(path.join(destination, project.name, runId, "upload.json"), "utf8"));
    assert.equal(state.state, "failed");
    assert.equal((await composure("verify", { ...env, RUN: runId })).code, 0, "the local run is intact");
    assert.ok(!existsSync(path.join(storeDir, runId, "manifest.json")), "no manifest on the remote: the remote run is incomplete");

    await server.start();
    const sync = await composure("sync", env);
    assert.equal(sync.code, 0, sync.stderr);
    assert.ok(existsSync(path.join(storeDir, runId, "manifest.json")));
    const list = JSON.parse((await composure("list", env, ["--json"])).stdout);
    assert.equal(list.find((row: { run: string }) => row.run === runId).offsite, "uploaded");
  });

  test("age encryption: nothing readable on the remote, round trip with the identity, a wrong identity touches nothing", async () => {
    const keys = tempDir("age-keys");
    execFileSync("age-keygen", ["-o", path.join(keys, "identity.txt")], { stdio: "ignore" });
    execFileSync("age-keygen", ["-o", path.join(keys, "wrong.txt")], { stdio: "ignore" });
    const recipient = execFileSync("age-keygen", ["-y", path.join(keys, "identity.txt")], { encoding: "utf8" }).trim();
    const destination = tempDir("offsite-age");
    const config = configFile(`encryption:\n  recipients: ["${recipient}"]\n`);
    const env = envWith(destination, config);
    const expected = await snapshotVolume(project.volume("data"));
    const backup = await composure("backup", env);
    assert.equal(backup.code, 0, backup.stderr);
    // This run only: the store also holds the earlier tests' runs, which are not encrypted.
    const [runId] = readdirSync(path.join(destination, project.name)).filter((name) => /^\d{8}T/.test(name));
    const remoteFiles = filesUnder(path.join(server.dir, "store", project.name, runId));
    assert.ok(remoteFiles.some((file) => file.endsWith(".tar.zst.age")), "archives are stored as age files");
    for (const file of [...remoteFiles, ...filesUnder(destination)]) {
      assert.ok(!readFileSync(file).includes(marker), `${file} holds the marker in clear`);
      assert.ok(!readFileSync(file, "latin1").includes("AGE-SECRET-KEY"), `${file} holds an identity`);
    }
    const unreadable = await composure("verify", env);
    assert.equal(unreadable.code, 0, "size and sha256 are checked without the identity");

    rmSync(destination, { recursive: true, force: true });
    const before = await snapshotVolume(project.volume("data"));
    const wrong = await composure("restore", { ...env, FROM: "remote", FORCE: "1", NO_RESCUE: "1", AGE_IDENTITY_FILE: path.join(keys, "wrong.txt") });
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /age/);
    assert.equal(await snapshotVolume(project.volume("data")), before, "a wrong identity leaves the volume as it was");
    assert.ok(await project.running("app"));

    await inVolumes([`${project.volume("data")}:/data`], "rm -rf /data/*");
    const restore = await composure("restore", { ...env, FROM: "remote", FORCE: "1", NO_RESCUE: "1", AGE_IDENTITY_FILE: path.join(keys, "identity.txt") });
    assert.equal(restore.code, 0, restore.stderr);
    assert.equal(await snapshotVolume(project.volume("data")), expected);
    assert.ok(statSync(path.join(keys, "identity.txt")).isFile());
  });
});

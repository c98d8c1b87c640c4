// Off-site copies on a real S3 API (rclone serve s3 of the pinned rclone, test/support/remotes.ts):
// a run uploaded with each storage engine comes back FROM=remote onto an empty destination
// byte for byte; wrong credentials fail the upload at once, naming the remote and never the
// secret, with the local run intact; a server killed during an upload and restarted on the same
// port and folder lets `make sync` complete the remote copy, which then restores identically.
import assert from "node:assert/strict";
import { copyFileSync, existsSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { busyboxProject, composure, inVolumes, requireDocker, snapshotVolume, tempDir, waitFor } from "../support/composure.ts";
import { S3Server } from "../support/remotes.ts";

const project = busyboxProject("cmpt-s3", { app: ["data:/data"] });
const server = new S3Server("offsites3");

/** A composure.yml whose remote is `offsites3:<bucket>/<prefix>`. */
function configFile(prefix: string, extra = ""): string {
  const file = path.join(tempDir("s3-config"), "composure.yml");
  writeFileSync(file, `remote:\n  target: "offsites3:${server.bucket}/${prefix}"\n  check: hash\n  chunk_size: 5M\nstop_timeout_seconds: 5\n${extra}`);
  return file;
}

const envWith = (destination: string, config: string, clientEnv = server.clientEnv()) => ({
  PROJECT: project.name, DESTINATION: destination, CONFIG: config, COMPOSURE_RCLONE_BACKOFF: "0.2", ...clientEnv,
});

const runIdsIn = (destination: string) => readdirSync(path.join(destination, project.name)).filter((name) => /^\d{8}T/.test(name));
const remoteRuns = async (env: Record<string, string>) => JSON.parse((await composure("list", { ...env, FROM: "remote" }, ["--json"])).stdout).map((row: { run: string }) => row.run);

/** Restores the remote's latest run into a new, empty destination (with the kept repository password, if any). */
async function restoreIntoFreshDestination(env: Record<string, string>, keptPassword?: string): Promise<void> {
  const fresh = tempDir("s3-fresh");
  if (keptPassword) copyFileSync(keptPassword, path.join(fresh, ".repository-password"));
  await inVolumes([`${project.volume("data")}:/data`], "rm -rf /data/*; echo lost > /data/lost");
  const restore = await composure("restore", { ...env, DESTINATION: fresh, FROM: "remote", FORCE: "1", NO_RESCUE: "1" });
  assert.equal(restore.code, 0, restore.stderr);
  rmSync(fresh, { recursive: true, force: true });
}

describe("off-site copies on a real S3 API (rclone serve s3)", { timeout: 900_000 }, () => {
  before(async () => {
    await requireDocker();
    await server.start();
    await project.up();
    await inVolumes([`${project.volume("data")}:/data`], "mkdir -p /data/small; i=0; while [ $i -lt 200 ]; do echo \"file $i\" > /data/small/f$i; i=$((i+1)); done; dd if=/dev/urandom of=/data/blob bs=1M count=12 2>/dev/null");
  });
  after(async () => {
    await project.down().catch(() => undefined);
    await server.stop();
    rmSync(server.dir, { recursive: true, force: true });
  });

  for (const engine of ["archive", "repository"]) {
    test(`${engine} engine: a run on S3 restores identical volumes onto an empty destination`, async () => {
      const destination = tempDir(`s3-${engine}`);
      const env = { ...envWith(destination, configFile(engine)), STORAGE: engine };
      const expected = await snapshotVolume(project.volume("data"));
      const backup = await composure("backup", env);
      assert.equal(backup.code, 0, backup.stderr);
      const [runId] = runIdsIn(destination);
      assert.deepEqual(await remoteRuns(env), [runId]);
      assert.ok(existsSync(server.pathOf(`${engine}/${project.name}/${runId}/manifest.json`)), "the manifest is an object in the bucket");
      if (engine === "repository") assert.ok(existsSync(server.pathOf(`${engine}/${project.name}/.repository/config`)), "the repository went up too");

      // The local destination is lost; the operator kept the repository password file elsewhere.
      const keptPassword = engine === "repository" ? path.join(tempDir("s3-kept"), "password") : undefined;
      if (keptPassword) copyFileSync(path.join(destination, ".repository-password"), keptPassword);
      rmSync(destination, { recursive: true, force: true });
      await restoreIntoFreshDestination(env, keptPassword);
      assert.equal(await snapshotVolume(project.volume("data")), expected);
      assert.ok(await project.running("app"));
    });
  }

  test("wrong S3 credentials: the upload fails at once, naming the remote and not the secret; the local run is intact", async () => {
    const destination = tempDir("s3-creds");
    const wrongSecret = `wrong-secret-${process.pid}-${Date.now()}`;
    const env = envWith(destination, configFile("creds"), server.clientEnv(wrongSecret));
    const backup = await composure("backup", env);
    assert.equal(backup.code, 1, backup.stderr);
    assert.match(backup.stderr, /rclone offsites3:backups\/creds/);
    assert.match(backup.stderr, /credentials/);
    assert.doesNotMatch(backup.stderr, /retrying/, "a refused key is permanent: no retries");
    for (const output of [backup.stdout, backup.stderr]) {
      assert.ok(!output.includes(wrongSecret) && !output.includes(server.secretKey), "no secret in the output");
    }
    const [runId] = runIdsIn(destination);
    assert.equal((await composure("verify", { ...env, RUN: runId })).code, 0, "the local run is intact");
  });

  test("the S3 server killed during an upload and restarted: make sync completes the remote copy, which restores identically", async () => {
    const destination = tempDir("s3-flap");
    const env = envWith(destination, configFile("flap", "").replace("  chunk_size: 5M\n", "  chunk_size: 5M\n  bwlimit: 2M\n"));
    const expected = await snapshotVolume(project.volume("data"));
    const storeDir = server.pathOf(`flap/${project.name}`);
    const backup = composure("backup", env);
    // Kill the server once the upload of this run has started writing into the bucket.
    await waitFor("the upload to start", () => existsSync(storeDir) && readdirSync(storeDir).length > 0, 120_000, 20);
    await server.stop();
    const outcome = await backup;
    assert.equal(outcome.code, 1, outcome.stderr);
    assert.match(outcome.stderr, /make sync/);
    const [runId] = runIdsIn(destination);
    assert.ok(!existsSync(path.join(storeDir, runId, "manifest.json")), "no manifest on the remote: the remote run is incomplete");
    assert.equal((await composure("verify", { ...env, RUN: runId })).code, 0, "the local run is intact");

    await server.start(); // same port, same folder
    const sync = await composure("sync", env);
    assert.equal(sync.code, 0, sync.stderr);
    assert.deepEqual(await remoteRuns(env), [runId]);
    await restoreIntoFreshDestination(env);
    assert.equal(await snapshotVolume(project.volume("data")), expected);
  });
});

// Acceptance of the foundation: a real Compose project, awkward data, backup -> remove the
// volumes -> restore -> identical trees and running services; restore over live data with a
// rescue copy; a capture failure still leaves the stopped service running. Once per storage
// engine: archive files and the restic repository (STORAGE=).
import assert from "node:assert/strict";
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { resticBinary } from "../../scripts/lib/store/restic.ts";
import { besideData, eventually, busyboxProject, busyboxImage, composure, docker, inVolumes, requireDocker, snapshotVolume, tempDir } from "../support/composure.ts";


// Awkward content: many small files, one large file, symlinks (one dangling), a hardlink pair,
// uid 999 with mode 0600, an empty directory, names with spaces, newlines and non-ASCII.
const generate = `
set -e
cd /files
mkdir -p small empty "with space" deep/a/b/c
i=0; while [ $i -lt 10000 ]; do echo "file $i" > small/f$i; i=$((i+1)); done
dd if=/dev/urandom of=big.bin bs=1M count=200 2>/dev/null
ln -s big.bin link-to-big; ln -s /nowhere/at/all dangling
echo pair > hard1; ln hard1 hard2
echo secret > owned; chown 999:999 owned; chmod 0600 owned
echo spaced > "with space/a file"; printf 'x' > "$(printf 'new\\nline')"; echo u > "ünïcödé ✓"
echo deep > deep/a/b/c/leaf; touch -d "2001-02-03 04:05:06" deep/a/b small/f1
cd /state; echo state > state.txt; mkdir -p sub; echo 1 > sub/one; chown -R 999:999 sub
cd /shared; echo shared > shared.txt
`;

for (const engine of ["archive", "repository"] as const) describe(`volume strategy round trip (${engine} engine)`, { timeout: 600_000 }, () => {
  const project = busyboxProject(`cmpt-round-${engine.slice(0, 4)}`, { app: ["files:/files", "shared:/shared", "./excluded:/excluded"], cache: ["state:/state", "shared:/shared"] });
  const destination = tempDir("roundtrip-dest");
  const env = { PROJECT: project.name, DESTINATION: destination, STORAGE: engine };
  const volumes = ["files", "state", "shared"].map((name) => project.volume(name));

  before(async () => {
    await requireDocker();
    await project.up();
    await inVolumes(volumes.map((volume, index) => `${volume}:/${["files", "state", "shared"][index]}`), generate);
  });
  after(async () => {
    await project.down().catch(() => undefined);
  });

  test("backup, removing the volumes and restoring gives identical trees and running services", async () => {
    const before = await Promise.all(volumes.map(snapshotVolume));
    const backup = await composure("backup", env);
    assert.equal(backup.code, 0, backup.stderr);
    const runs = JSON.parse((await composure("list", env, ["--json"])).stdout);
    assert.equal(runs.length, 1);
    const manifest = JSON.parse(readFileSync(path.join(destination, project.name, runs[0].run, "manifest.json"), "utf8"));
    const artifacts = manifest.services.flatMap((service: { artifacts: { path: string; repository?: { snapshot: string } }[] }) => service.artifacts);
    const archived = artifacts.map((artifact: { path: string }) => artifact.path).sort();
    const runDir = path.join(destination, project.name, runs[0].run);
    if (engine === "archive") {
      assert.deepEqual(archived, ["app/files.tar.zst", "app/shared.tar.zst", "cache/state.tar.zst"], "one archive per volume, the shared one once, no bind mount");
      assert.equal(statSync(path.join(runDir, "app", "files.tar.zst")).mode & 0o777, 0o600, "archives are 0600");
    } else {
      assert.deepEqual(archived, ["app/files", "app/shared", "cache/state"], "one snapshot per volume, the shared one once, no bind mount");
      assert.ok(artifacts.every((artifact: { repository?: { snapshot: string } }) => /^[0-9a-f]{64}$/.test(artifact.repository?.snapshot ?? "")), "each names its restic snapshot");
      assert.equal(statSync(path.join(destination, ".repository-password")).mode & 0o777, 0o600, "the password file is 0600");
    }
    assert.equal(statSync(runDir).mode & 0o777, 0o700, "run folders are 0700");

    await project.down();
    for (const volume of volumes) await assert.rejects(docker("volume", "inspect", volume));
    const restore = await composure("restore", { ...env, FORCE: "1" });
    assert.equal(restore.code, 0, restore.stderr);
    const labels = JSON.parse(await docker("volume", "inspect", "-f", "{{json .Labels}}", volumes[0]));
    assert.equal(labels["com.docker.compose.project"], project.name, "recreated with the labels Compose adopts");
    await project.up();
    assert.ok(await project.running("app"));
    assert.ok(await project.running("cache"));
    const after = await Promise.all(volumes.map(snapshotVolume));
    for (const [index, volume] of volumes.entries()) assert.equal(after[index], before[index], `tree of ${volume} differs`);
  });

  test("restoring over live data stops the users, keeps a rescue run and restarts them", async () => {
    const expected = await snapshotVolume(volumes[1]);
    await inVolumes([`${volumes[1]}:/state`], "echo damaged > /state/state.txt; rm -rf /state/sub");
    const damaged = await snapshotVolume(volumes[1]);
    const startedBefore = await project.startedAt("cache");
    const restore = await composure("restore", { ...env, SERVICE: "cache", FORCE: "1" });
    assert.equal(restore.code, 0, restore.stderr);
    assert.match(restore.stderr, /rescue copy of the replaced data: run (\S+)/);
    assert.equal(await snapshotVolume(volumes[1]), expected);
    assert.ok(await project.running("cache"));
    assert.notEqual(await project.startedAt("cache"), startedBefore, "cache was stopped for the restore");
    await eventually("the replaced content deleted beside the volume", async () => assert.deepEqual(await besideData(volumes[1]), []), 60);
    const rescueRun = /run (\S+-rescue)/.exec(restore.stderr)![1];
    const undo = await composure("restore", { ...env, RUN: rescueRun, SERVICE: "cache", FORCE: "1", NO_RESCUE: "1" });
    assert.equal(undo.code, 0, undo.stderr);
    assert.equal(await snapshotVolume(volumes[1]), damaged, "the rescue run brings back what the restore replaced");
  });

  test("a volume a container outside the project uses is restored in place: that container sees the restored files", async () => {
    const first = await composure("restore", { ...env, SERVICE: "cache", FORCE: "1", NO_RESCUE: "1" });
    assert.equal(first.code, 0, first.stderr);
    const expected = await snapshotVolume(volumes[1]);
    const outsider = `${project.name}-outsider`;
    await docker("run", "-d", "--name", outsider, "--log-driver", "none", "-v", `${volumes[1]}:/state`, busyboxImage, "sleep", "600");
    try {
      await docker("exec", outsider, "sh", "-c", "echo damaged > /state/state.txt");
      const restore = await composure("restore", { ...env, SERVICE: "cache", FORCE: "1", NO_RESCUE: "1" });
      assert.equal(restore.code, 0, restore.stderr);
      assert.equal((await docker("exec", outsider, "cat", "/state/state.txt")).trim(), "state", "the outsider's mount shows the restored file");
      assert.equal(await snapshotVolume(volumes[1]), expected);
      assert.deepEqual(await besideData(volumes[1]), [], "nothing staged beside the volume");
    } finally {
      await docker("rm", "-f", outsider).catch(() => undefined);
    }
  });

  test("restore without a TTY and without FORCE refuses and changes nothing", async () => {
    const startedBefore = await project.startedAt("cache");
    const refused = await composure("restore", { ...env, SERVICE: "cache" });
    assert.equal(refused.code, 4);
    assert.match(refused.stderr, /FORCE=1/);
    assert.equal(await project.startedAt("cache"), startedBefore);
  });

  test("a dry-run restore lists what it would stop and replace and touches nothing", async () => {
    const startedBefore = await project.startedAt("app");
    const dry = await composure("restore", { ...env, SERVICE: "app", DRY_RUN: "1" });
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /would restore volume .*_files .*replace its content.*stop .*app/);
    assert.equal(await project.startedAt("app"), startedBefore);
  });

  test("a service stopped for capture is running again when the capture fails", async () => {
    const failed = await composure("backup", { ...env, SERVICE: "cache", ...(engine === "archive" ? { COMPOSURE_HELPER_IMAGE: await brokenTarImage() } : { RESTIC: brokenBackupRestic() }) });
    assert.equal(failed.code, 1);
    assert.match(failed.stderr, engine === "archive" ? /injected tar failure/ : /injected restic failure/);
    assert.ok(await project.running("cache"), "cache runs again after the failed capture");
    const runs = JSON.parse((await composure("list", env, ["--json"])).stdout);
    assert.equal(runs[0].outcome, "failed");
    assert.ok(!existsSync(path.join(destination, project.name, runs[0].run, "cache", "state.tar.zst")));
    const record = JSON.parse(readFileSync(path.join(destination, project.name, runs[0].run, "manifest.json"), "utf8")).services[0];
    assert.deepEqual([record.name, record.status, record.artifacts], ["cache", "failed", []]);
  });
});

/** A helper image whose tar fails. */
async function brokenTarImage(): Promise<string> {
  const image = "composure-test/broken-tar:latest";
  const context = tempDir("broken-tar");
  writeFileSync(path.join(context, "Dockerfile"), `FROM ${busyboxImage}\nRUN rm /bin/tar && printf '#!/bin/sh\\necho injected tar failure >&2\\nexit 3\\n' > /bin/tar && chmod +x /bin/tar\n`);
  await docker("build", "-q", "-t", image, context);
  return image;
}

/** A RESTIC= whose backups fail (in the helper too: it is a sh script); everything else runs the real restic on the host. */
function brokenBackupRestic(): string {
  const script = path.join(tempDir("broken-restic"), "restic");
  writeFileSync(script, `#!/bin/sh\nif [ "$1" = backup ]; then echo injected restic failure >&2; exit 1; fi\nexec ${JSON.stringify(resticBinary())} "$@"\n`, { mode: 0o755 });
  return script;
}

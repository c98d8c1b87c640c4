// An append-only off-site remote (OpenSSH's sftp with a deny list, test/support/remotes.ts), with
// each storage engine: backup and sync succeed with the backup host's credentials, which never
// delete; a deliberate delete of a remote run with them fails, through composure (make prune
// FROM=remote, which names remote.prune_config_file) and through rclone itself (purge,
// deletefile, moveto), and the remote stays byte for byte as it was; `make prune FROM=remote`
// with the prune credentials of remote.prune_config_file removes what the policy says.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync, readdirSync, renameSync, writeFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { removalCheckFile } from "../../scripts/lib/pipeline/prune.ts";
import { rcloneBinary } from "../../scripts/lib/remote/rclone-binary.ts";
import { resticBinary } from "../../scripts/lib/store/restic.ts";
import { busyboxProject, composure, inVolumes, requireDocker, sh, tempDir } from "../support/composure.ts";
import { AppendOnlySftpServer } from "../support/remotes.ts";

const project = busyboxProject("cmpt-appendonly", { app: ["data:/data"] });
const server = new AppendOnlySftpServer("appendsftp");

/** composure.yml: the remote keeps one run; `prune` adds the prune credentials' rclone config file. */
function configFile(engine: string, options: { prune?: boolean; upload?: boolean; keepLast?: number } = {}): string {
  const file = path.join(tempDir("append-config"), "composure.yml");
  const remote = [`  target: "appendsftp:store/${engine}"`, "  check: hash", ...(options.prune ? [`  prune_config_file: ${server.rcloneConfig("prune")}`] : []), ...(options.upload === false ? ["  upload: false"] : [])];
  writeFileSync(file, `remote:\n${remote.join("\n")}\nretention:\n  require_verified: false\n  remote:\n    keep_last: ${options.keepLast ?? 1}\nstop_timeout_seconds: 5\n`);
  return file;
}

/** Every file under the engine's folder on the server with its sha256 (restic's lock files and the removal check aside). */
function remoteState(engine: string): Record<string, string> {
  const root = path.join(server.dir, "store", engine);
  const files = readdirSync(root, { recursive: true, withFileTypes: true }).filter((entry) => entry.isFile());
  const state = files.map((entry) => path.relative(root, path.join(entry.parentPath, entry.name))).filter((file) => !file.includes(`.repository${path.sep}locks`) && path.basename(file) !== removalCheckFile);
  return Object.fromEntries(state.sort().map((file) => [file, createHash("sha256").update(readFileSync(path.join(root, file))).digest("hex")]));
}

const runIdsIn = (destination: string) => readdirSync(path.join(destination, project.name)).filter((name) => /^\d{8}T/.test(name)).sort();
const remoteRuns = async (env: Record<string, string>) => JSON.parse((await composure("list", { ...env, FROM: "remote" }, ["--json"])).stdout).map((row: { run: string }) => row.run).sort();

describe("an append-only remote: the backup host adds, only the prune credentials delete", { timeout: 900_000 }, () => {
  before(async () => {
    await requireDocker();
    await server.start();
    await project.up();
    await inVolumes([`${project.volume("data")}:/data`], "echo first > /data/a; dd if=/dev/urandom of=/data/blob bs=1M count=6 2>/dev/null");
  });
  after(async () => {
    await project.down().catch(() => undefined);
    await server.stop();
  });

  for (const engine of ["archive", "repository"]) {
    test(`${engine} engine: backup and sync succeed, the backup credentials cannot delete a run, the prune credentials prune`, async () => {
      const destination = tempDir(`append-${engine}`);
      // The backup host's credentials come from the environment, as in the README's S3 example.
      const env = { PROJECT: project.name, DESTINATION: destination, STORAGE: engine, COMPOSURE_RCLONE_BACKOFF: "0.2", ...server.clientEnv("backup") };
      const backup = await composure("backup", { ...env, CONFIG: configFile(engine) });
      assert.equal(backup.code, 0, backup.stderr);
      await inVolumes([`${project.volume("data")}:/data`], "echo second > /data/b");
      const second = await composure("backup", { ...env, CONFIG: configFile(engine) });
      assert.equal(second.code, 0, second.stderr);
      await inVolumes([`${project.volume("data")}:/data`], "echo third > /data/c");
      const local = await composure("backup", { ...env, CONFIG: configFile(engine, { upload: false }) });
      assert.equal(local.code, 0, local.stderr);
      const sync = await composure("sync", { ...env, CONFIG: configFile(engine) });
      assert.equal(sync.code, 0, sync.stderr);
      const runs = runIdsIn(destination);
      assert.equal(runs.length, 3);
      assert.deepEqual(await remoteRuns({ ...env, CONFIG: configFile(engine) }), runs, "every run is off-site");
      const uploaded = remoteState(engine);

      // composure's own removal path with the backup credentials: refused, and said so.
      const refused = await composure("prune", { ...env, CONFIG: configFile(engine), FROM: "remote" });
      assert.equal(refused.code, 1, refused.stderr);
      assert.match(refused.stderr, /append-only for these credentials/);
      assert.match(refused.stderr, /remote\.prune_config_file/);
      // rclone itself with the backup credentials: deleting, renaming away, renaming over.
      const run = `appendsftp:store/${engine}/${project.name}/${runs[0]}`;
      const rclone = (...args: string[]) => spawnSync(rcloneBinary(), [...args, "--retries", "1", "--low-level-retries", "1"], { env: { ...process.env, ...env }, encoding: "utf8" });
      for (const args of [["purge", run], ["deletefile", `${run}/manifest.json`], ["moveto", `${run}/manifest.json`, `${run}/moved.json`], ["moveto", `${run}/manifest.json`, `appendsftp:store/${engine}/${project.name}/${runs[1]}/manifest.json`]]) {
        const attempt = rclone(...args);
        assert.notEqual(attempt.status, 0, `rclone ${args.join(" ")} succeeded with the backup credentials`);
        assert.match(attempt.stderr, /permission denied/);
      }
      if (engine === "repository") {
        // A snapshot no complete remote run refers to (its run's manifest hidden on the server):
        // the repository's own prune is refused too, before restic (which would retry for long) runs.
        const manifest = path.join(server.dir, "store", engine, project.name, runs[0], "manifest.json");
        renameSync(manifest, `${manifest}.hidden`);
        const forget = await composure("prune", { ...env, CONFIG: configFile(engine, { keepLast: 10 }), FROM: "remote" });
        renameSync(`${manifest}.hidden`, manifest);
        assert.equal(forget.code, 1, forget.stderr);
        assert.match(forget.stderr, /removal of \S+\.composure-removal-check was refused: .*append-only for these credentials/);
      }
      assert.deepEqual(remoteState(engine), uploaded, "the remote is as it was uploaded");

      // The prune credentials (their file wins over the backup credentials in the environment).
      const prune = await composure("prune", { ...env, CONFIG: configFile(engine, { prune: true }), FROM: "remote" });
      assert.equal(prune.code, 0, prune.stderr);
      assert.deepEqual(await remoteRuns({ ...env, CONFIG: configFile(engine) }), [runs[2]], "keep_last: 1 keeps the newest run alone");
      for (const gone of runs.slice(0, 2)) assert.ok(!existsSync(path.join(server.dir, "store", engine, project.name, gone)), `${gone} is deleted`);
      assert.deepEqual(runIdsIn(destination), runs, "the local runs are untouched");
      if (engine === "repository") {
        assert.match(prune.stderr, /forgot 2 snapshot\(s\) no kept run refers to/);
        const restic = ["-r", path.join(server.dir, "store", engine, project.name, ".repository"), "--password-file", path.join(destination, ".repository-password"), "--cache-dir", tempDir("append-cache")];
        const snapshots = JSON.parse(await sh(resticBinary(), [...restic, "snapshots", "--json", "--no-lock"])) as unknown[];
        assert.equal(snapshots.length, 1, "one snapshot left, the kept run's");
        await sh(resticBinary(), [...restic, "check"]);
      }
    });
  }
});

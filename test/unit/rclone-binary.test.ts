// Which rclone runs, and how an S3 remote is recognised and refused with an old rclone. The
// version check runs real programs: a tiny script that prints an old rclone's version line.
import assert from "node:assert/strict";
import { chmodSync, mkdirSync, readFileSync, utimesSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { backendType, checkS3Version, pinnedRclonePath, pinnedRcloneVersion, rcloneBinary, rcloneEnv, remoteName } from "../../scripts/lib/remote/rclone-binary.ts";

const scratch = () => {
  const dir = path.join(os.tmpdir(), `composure-unit-rclone-${process.pid}-${Math.random().toString(36).slice(2)}`);
  mkdirSync(dir, { recursive: true });
  return dir;
};

/** An executable that answers `version` like the given rclone and `config dump` with the given JSON. */
function fakeRclone(version: string, dump = "{}"): string {
  const file = path.join(scratch(), "rclone");
  writeFileSync(file, `#!/bin/sh\nif [ "$1" = version ]; then echo "rclone v${version}"; echo "- os/type: linux"; else echo '${dump}'; fi\n`);
  chmodSync(file, 0o755);
  return file;
}

test("RCLONE= wins, then the pinned build cached by version, then rclone on the PATH", () => {
  const home = scratch();
  assert.equal(rcloneBinary({ HOME: home, RCLONE: "/opt/rclone" }), "/opt/rclone");
  assert.equal(rcloneBinary({ HOME: home }), "rclone");
  const pinned = pinnedRclonePath({ HOME: home });
  assert.equal(pinned, path.join(home, ".cache", "composure", "tools", `rclone-${pinnedRcloneVersion}`, "rclone"));
  mkdirSync(path.dirname(pinned), { recursive: true });
  writeFileSync(pinned, "");
  assert.equal(rcloneBinary({ HOME: home }), pinned);
  assert.equal(pinnedRclonePath({ HOME: home, XDG_CACHE_HOME: "/c" }), `/c/composure/tools/rclone-${pinnedRcloneVersion}/rclone`);
});

test("remote names: a remote's name, never a local path", () => {
  assert.equal(remoteName("s3:bucket/prefix"), "s3");
  assert.equal(remoteName("off-site:b"), "off-site");
  assert.equal(remoteName("/srv/backups"), undefined);
  assert.equal(remoteName("relative/dir"), undefined);
  assert.equal(remoteName("C:\\backups"), undefined);
});

test("the backend type comes from the environment first, else from rclone config dump", async () => {
  const binary = fakeRclone("1.76.0", '{"cfgremote":{"type":"s3","provider":"AWS"}}');
  assert.equal(await backendType("my-s3:b/p", binary, { RCLONE_CONFIG_MY_S3_TYPE: "s3" }), "s3");
  assert.equal(await backendType("web:b", binary, { RCLONE_CONFIG_WEB_TYPE: "webdav" }), "webdav");
  assert.equal(await backendType("cfgremote:b", binary, {}), "s3");
  assert.equal(await backendType("absent:b", binary, {}), "unknown");
  assert.equal(await backendType(":s3,provider=Other:bucket", binary, {}), "s3");
  assert.equal(await backendType("/srv/backups", binary, {}), "local");
});

test("an rclone older than 1.65 is refused for S3 with what to do; 1.65 and newer pass", async () => {
  const env = { HOME: scratch() }; // where binaries that passed are noted
  await assert.rejects(checkS3Version("s3:b", fakeRclone("1.60.1-DEV"), env), (error: Error) => {
    assert.match(error.message, /is rclone 1\.60\.1, and the S3 remote s3:b needs rclone 1\.65\.0 or newer/);
    assert.match(error.message, /AWS_CA_BUNDLE/);
    assert.match(error.message, new RegExp(`make setup.*rclone ${pinnedRcloneVersion.replace(/\./g, "\\.")}.*RCLONE=`));
    return true;
  });
  await checkS3Version("s3:b", fakeRclone("1.65.0"), env);
  await checkS3Version("s3:b", fakeRclone("2.0.0"), env);
  await assert.rejects(checkS3Version("s3:b", "/nonexistent/rclone", env), /does not run/);
});

test("a binary that passed is not asked again until it changes", async () => {
  const env = { HOME: scratch() };
  const binary = fakeRclone("1.70.0");
  const built = new Date("2026-01-01T00:00:00Z");
  utimesSync(binary, built, built);
  await checkS3Version("s3:b", binary, env);
  // The same path now answers like an old rclone, but size and mtime are unchanged: noted, not run.
  const sameSize = readFileSync(binary, "utf8").replace("1.70.0", "1.60.1");
  writeFileSync(binary, sameSize);
  utimesSync(binary, built, built);
  await checkS3Version("s3:b", binary, env);
  // Replaced by another build (another mtime): asked again, and refused.
  utimesSync(binary, new Date(), new Date(Date.now() + 5000));
  await assert.rejects(checkS3Version("s3:b", binary, env), /is rclone 1\.60\.1/);
});

test("the prune credentials' file alone defines the remote: its RCLONE_CONFIG_<NAME>_* variables are left out", () => {
  const base = { PATH: "/bin", RCLONE_CONFIG_OFF_SITE_KEY_FILE: "/backup.key", RCLONE_CONFIG_OFF_SITE_PORT: "22", RCLONE_CONFIG_OTHER_TYPE: "s3", RCLONE_BWLIMIT: "1M" };
  const everyday = rcloneEnv("off-site:store", "/backup.conf", false, base);
  assert.deepEqual(everyday, { ...base, RCLONE_CONFIG: "/backup.conf" }, "the backup credentials: the environment may override the file");
  const prune = rcloneEnv("off-site:store", "/prune.conf", true, base);
  assert.deepEqual(prune, { PATH: "/bin", RCLONE_CONFIG_OTHER_TYPE: "s3", RCLONE_BWLIMIT: "1M", RCLONE_CONFIG: "/prune.conf" });
  assert.deepEqual(rcloneEnv("/srv/offsite", undefined, true, base), base, "a local path has no remote variables");
});

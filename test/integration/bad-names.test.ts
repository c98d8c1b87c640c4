// Issue 11 vs issue 2: names in a MANIFEST (service, volume, artifact path) with control
// characters, bytes that are not UTF-8 or a path out of the run are refused by restore and verify
// with the field named, before anything is stopped or written; names of files INSIDE a volume
// (a newline, a byte 0xff) are the user's own and come back byte for byte.
import assert from "node:assert/strict";
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import type { Manifest } from "../../scripts/lib/catalog/manifest.ts";
import { backupsOf, busyboxProject, composure, inVolumes, requireDocker, snapshotVolume, tempDir } from "../support/composure.ts";

const project = busyboxProject("c11-badnames", { db: ["data:/data"] });
const destination = tempDir("c11-badnames-dest");
const env = { PROJECT: project.name, DESTINATION: destination };
const runIds = (dest: string) => backupsOf(path.join(dest, project.name)).runIds();
const copies: string[] = [];

/** Raw bytes of every name in the volume, sorted: names that are not UTF-8 compared exactly. */
const namesHex = () => inVolumes([`${project.volume("data")}:/data:ro`], "cd /data && find . | sort | od -An -tx1");
const invalid = "@@0xff@@"; // placeholder for a byte that is not UTF-8, put in after JSON.stringify

/** A copy of the run in a destination of its own, with its manifest edited by `edit`. */
function tamperedCopy(runId: string, edit: (manifest: Manifest) => void): string {
  const dest = tempDir("c11-badnames-copy");
  copies.push(dest);
  const runDir = path.join(dest, project.name, runId);
  mkdirSync(path.dirname(runDir), { recursive: true });
  cpSync(path.join(destination, project.name, runId), runDir, { recursive: true });
  const file = path.join(runDir, "manifest.json");
  const manifest = JSON.parse(readFileSync(file, "utf8")) as Manifest;
  edit(manifest);
  const parts = JSON.stringify(manifest, null, 2).split(invalid).map((part) => Buffer.from(part));
  writeFileSync(file, Buffer.concat(parts.flatMap((part, index) => (index ? [Buffer.from([0xff]), part] : [part]))));
  return dest;
}

const artifactOf = (manifest: Manifest) => manifest.services[0].artifacts[0];
const cases: { what: string; edit: (manifest: Manifest) => void; refusal: RegExp }[] = [
  { what: "a newline in a service name", edit: (m) => (m.services[0].name = "db\nrm -rf /"), refusal: /services\.0\.name: "db\\nrm -rf \/" contains the control character U\+000A/ },
  { what: "a byte that is not UTF-8 in a volume's compose name", edit: (m) => (artifactOf(m).volume!.composeName = `da${invalid}ta`), refusal: /services\.0\.artifacts\.0\.volume\.composeName: .*not valid UTF-8/ },
  { what: "a NUL in a volume name", edit: (m) => (artifactOf(m).volume!.name += "\u0000"), refusal: /services\.0\.artifacts\.0\.volume\.name: .*control character U\+0000/ },
  { what: "an artifact path out of the run", edit: (m) => (artifactOf(m).path = "../../../../etc/passwd"), refusal: /artifact outside its run directory: "\.\.\/\.\.\/\.\.\/\.\.\/etc\/passwd"/ },
];

describe("bad names in a manifest vs names inside a volume", { timeout: 600_000 }, () => {
  let runId: string;
  let treeBefore: string;
  let namesBefore: string;
  before(async () => {
    await requireDocker();
    await project.up();
    await inVolumes([`${project.volume("data")}:/data`], "echo a > \"/data/$(printf 'line\\nbreak')\"; echo b > \"/data/$(printf 'caf\\377')\"; echo c > /data/plain");
    treeBefore = await snapshotVolume(project.volume("data"));
    namesBefore = await namesHex();
    const backup = await composure("backup", env);
    assert.equal(backup.code, 0, backup.stderr);
    runId = runIds(destination).at(-1)!;
  });
  after(async () => {
    await project.down().catch(() => undefined);
    for (const dir of [destination, project.dir, ...copies]) rmSync(dir, { recursive: true, force: true });
  });

  for (const { what, edit, refusal } of cases) {
    test(`${what}: restore FORCE=1 and verify refuse the manifest, naming the field; nothing is touched`, async () => {
      const dest = tamperedCopy(runId, edit);
      const startedAt = await project.startedAt("db");
      const restore = await composure("restore", { ...env, DESTINATION: dest, FORCE: "1" });
      assert.equal(restore.code, 1, restore.stderr);
      assert.match(restore.stderr, refusal);
      assert.doesNotMatch(restore.stderr, /stopping/);
      assert.equal(await project.startedAt("db"), startedAt, "the service was not stopped");
      assert.equal(await snapshotVolume(project.volume("data")), treeBefore, "the volume is untouched");
      assert.deepEqual(runIds(dest), [runId], "no rescue run was made");
      const verify = await composure("verify", { ...env, DESTINATION: dest });
      assert.equal(verify.code, 1, verify.stderr);
      assert.match(verify.stderr, refusal);
    });
  }

  test("the untouched run restores names with a newline and a byte 0xff exactly", async () => {
    await inVolumes([`${project.volume("data")}:/data`], "rm -f /data/line* /data/caf*; echo changed > /data/plain");
    const restore = await composure("restore", { ...env, FORCE: "1", NO_RESCUE: "1" });
    assert.equal(restore.code, 0, restore.stderr);
    assert.equal(await namesHex(), namesBefore);
    assert.equal(await snapshotVolume(project.volume("data")), treeBefore);
    assert.ok(await project.running("db"));
  });
});

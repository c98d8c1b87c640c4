// Acceptance of make export / make import: a run carried to an empty second destination as one
// tar file restores identical trees there and passes make verify; a flipped byte in the file is
// refused and adds nothing; a run already there is refused; an incomplete run is not exported.
// Once per storage engine: archive files and the restic repository (STORAGE=).
import assert from "node:assert/strict";
import { copyFileSync, existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, mkdirSync } from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { backupsOf, busyboxProject, composure, inVolumes, requireDocker, snapshotVolume, tempDir } from "../support/composure.ts";
import { resticOf } from "../support/restic.ts";

const generate = `
set -e
cd /files
mkdir -p a/b empty "with space"
i=0; while [ $i -lt 300 ]; do echo "file $i" > a/f$i; i=$((i+1)); done
dd if=/dev/urandom of=big.bin bs=1M count=16 2>/dev/null
ln -s big.bin link; echo pair > hard1; ln hard1 hard2
echo secret > a/b/owned; chown 999:999 a/b/owned; chmod 0600 a/b/owned
echo spaced > "with space/a file"; touch -d "2001-02-03 04:05:06" a/b
`;

/** Every folder named like a run in <destination>/<project> (none when the folder is missing). */
const runsIn = (destination: string, project: string) => (existsSync(path.join(destination, project)) ? backupsOf(path.join(destination, project)).runIds() : []);

for (const engine of ["archive", "repository"] as const) describe(`export and import of a run (${engine} engine)`, { timeout: 900_000 }, () => {
  const project = busyboxProject(`cmpt-export-${engine.slice(0, 4)}`, { app: ["files:/files"] });
  const first = tempDir("export-first");
  const second = tempDir("export-second");
  const exports = tempDir("export-files");
  const file = path.join(exports, "run.tar");
  const env = { PROJECT: project.name, DESTINATION: first, STORAGE: engine };
  const volume = project.volume("files");
  /** An empty destination that can open the exported repository: the password file copied there. */
  const emptyDestination = (name: string) => {
    const destination = tempDir(name);
    if (engine === "repository") copyFileSync(resticOf(first, project.name).passwordFile, path.join(destination, ".repository-password"));
    return destination;
  };
  let runId = "";

  before(async () => {
    await requireDocker();
    await project.up();
    await inVolumes([`${volume}:/files`], generate);
  });
  after(async () => {
    await project.down().catch(() => undefined);
    for (const dir of [first, second, exports]) rmSync(dir, { recursive: true, force: true });
  });

  test("export, import into an empty destination and restore from it give identical trees; verify passes there", async () => {
    const expected = await snapshotVolume(volume);
    const backup = await composure("backup", env);
    assert.equal(backup.code, 0, backup.stderr);
    [runId] = runsIn(first, project.name);

    const exported = await composure("export", { ...env, RUN: "latest", FILE: file });
    assert.equal(exported.code, 0, exported.stderr);
    assert.deepEqual(readdirSync(exports), ["run.tar"], "no partial file, no staging folder left beside it");
    if (engine === "repository") assert.match(exported.stderr, /NOT in the export/, "the operator is told the password file is needed");

    if (engine === "repository") copyFileSync(resticOf(first, project.name).passwordFile, path.join(second, ".repository-password"));
    const imported = await composure("import", { DESTINATION: second, FILE: file });
    assert.equal(imported.code, 0, imported.stderr);
    assert.deepEqual(runsIn(second, project.name), [runId]);
    assert.deepEqual(readdirSync(second).filter((name) => name.startsWith(".import-")), [], "the work folder is removed");
    const manifest = (destination: string) => readFileSync(path.join(destination, project.name, runId, "manifest.json"), "utf8");
    if (engine === "archive") {
      assert.equal(manifest(second), manifest(first), "the manifest arrives byte for byte");
    } else {
      const snapshots = JSON.parse(manifest(second)).services.flatMap((service: { artifacts: { repository: { snapshot: string } }[] }) => service.artifacts.map((artifact) => artifact.repository.snapshot));
      const local = await resticOf(second, project.name).snapshotIds();
      assert.deepEqual(snapshots.filter((id: string) => !local.includes(id)), [], "the imported manifest names snapshots of the local repository");
    }

    const verify = await composure("verify", { PROJECT: project.name, DESTINATION: second, RUN: runId });
    assert.equal(verify.code, 0, verify.stderr);

    await inVolumes([`${volume}:/files`], "rm -rf /files/a /files/big.bin; echo damaged > /files/hard1");
    assert.notEqual(await snapshotVolume(volume), expected);
    const restore = await composure("restore", { PROJECT: project.name, DESTINATION: second, FORCE: "1" });
    assert.equal(restore.code, 0, restore.stderr);
    assert.equal(await snapshotVolume(volume), expected);
  });

  test("a copy of the export with one byte flipped in the middle is refused, and nothing is added", async () => {
    const damaged = path.join(exports, "damaged.tar");
    const bytes = readFileSync(file);
    bytes[Math.floor(bytes.length / 2)] ^= 0x01;
    writeFileSync(damaged, bytes);
    const third = emptyDestination("export-third");
    try {
      const refused = await composure("import", { DESTINATION: third, FILE: damaged });
      assert.equal(refused.code, 1, refused.stderr);
      assert.match(refused.stderr, /damaged\.tar is damaged or was altered \(or make export did not write it\), refused: .*(does not match its sha256|corrupt tar header|padding).*Nothing was imported/);
      assert.deepEqual(runsIn(third, project.name), [], "no run added");
      assert.ok(!existsSync(path.join(third, project.name, ".repository")), "no repository made");
      assert.deepEqual(readdirSync(third).filter((name) => name.startsWith(".import-")), [], "the work folder is removed");
    } finally {
      rmSync(third, { recursive: true, force: true });
      rmSync(damaged, { force: true });
    }
  });

  test("importing a run that is already there is refused and changes nothing", async () => {
    const before = readFileSync(path.join(second, project.name, runId, "manifest.json"));
    const again = await composure("import", { DESTINATION: second, FILE: file });
    assert.equal(again.code, 2, again.stderr);
    assert.match(again.stderr, new RegExp(`run ${runId} of project ${project.name} is already here`));
    assert.deepEqual(readFileSync(path.join(second, project.name, runId, "manifest.json")), before);
  });

  test("an incomplete run (no manifest) is not exported, and no file is written", async () => {
    const incomplete = "20000101T000000Z";
    mkdirSync(path.join(first, project.name, incomplete), { mode: 0o700 });
    const target = path.join(exports, "incomplete.tar");
    const refused = await composure("export", { ...env, RUN: incomplete, FILE: target });
    assert.equal(refused.code, 2, refused.stderr);
    assert.match(refused.stderr, /run 20000101T000000Z of project \S+ cannot be exported: .*incomplete.*Only a complete run can be exported/);
    assert.ok(!existsSync(target) && !existsSync(`${target}.partial`));
    assert.ok(statSync(file).size > 0);
  });
});

// Acceptance of the everyday volume options, on the real engine: exclude_paths (left out of the
// archive and of the restic snapshot, kept from the live volume by a restore unless CLEAN=1),
// secret_paths (backed up, kept from the live volume unless RESTORE_SECRETS=1, restored onto a
// fresh host), once per storage engine; then tags, notes and pins (make list TAG=, make pin,
// retention.pin_tags, make prune).
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { backupsOf, busyboxProject, composure, inVolumes, requireDocker, sh, tempDir } from "../support/composure.ts";
import { resticOf } from "../support/restic.ts";

// "$$" is Compose's escape for "$": the service's label holds "$(touch pwned2)", which must stay a
// literal name that only ever reaches argv, never a shell.
const hostileName = "x; touch pwned $(touch pwned2)";
const labels = { "composure.exclude_paths": "cache/**, *.tmp, lost+found, x; touch pwned $$(touch pwned2)", "composure.secret_paths": ".secret.key" };

const generate = `
set -e
cd /data
mkdir -p cache/sub a/cache sub lost+found
echo keep > keep.txt; echo v1 > .secret.key
echo cached > cache/a; echo deeper > cache/sub/b; echo kept > a/cache/kept
echo tmp > x.tmp; echo tmp > sub/y.tmp; echo lost > lost+found/f
echo hostile > 'x; touch pwned $(touch pwned2)'
dd if=/dev/urandom of=sub/data.bin bs=1k count=64 2>/dev/null
`;

/** What the tests read of the volume: file -> content (first line), sorted. */
async function contents(volume: string): Promise<Record<string, string>> {
  const out = await inVolumes([`${volume}:/data`], "cd /data && find . -type f ! -name data.bin | sort | while IFS= read -r f; do printf '%s=%s\\n' \"$f\" \"$(head -n 1 \"$f\")\"; done");
  return Object.fromEntries(out.trim().split("\n").filter(Boolean).map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)]));
}

for (const engine of ["archive", "repository"] as const) describe(`exclude_paths and secret_paths (${engine} engine)`, { timeout: 900_000 }, () => {
  const project = busyboxProject(`cmpt-opts-${engine.slice(0, 4)}`, { app: ["data:/data"] }, { app: labels });
  const destination = tempDir("options-dest");
  const env = { PROJECT: project.name, DESTINATION: destination, STORAGE: engine };
  const volume = project.volume("data");
  const runs = backupsOf(path.join(destination, project.name), "plain");

  before(async () => {
    await requireDocker();
    await project.up();
    await inVolumes([`${volume}:/data`], generate);
  });
  after(async () => {
    await project.down().catch(() => undefined);
  });

  test("make plan shows the exclusions and the secret paths", async () => {
    const plan = await composure("plan", env);
    assert.equal(plan.code, 0, plan.stderr);
    assert.match(plan.stdout, /left out of each volume \(exclude_paths\): cache\/\*\*, \*\.tmp, lost\+found, x; touch pwned \$\(touch pwned2\)/);
    assert.match(plan.stdout, /secret paths .*RESTORE_SECRETS=1.*: \.secret\.key/);
  });

  test("the backup holds no excluded entry, the secret file, and facts that count what was captured", async () => {
    const backup = await composure("backup", env);
    assert.equal(backup.code, 0, backup.stderr);
    const runId = runs.runIds().at(-1)!;
    const [artifact] = runs.manifestOf(runId).services[0].artifacts;
    const stored = engine === "archive" ? await archiveNames(path.join(destination, project.name, runId, artifact.path)) : await snapshotNames(artifact.repository.snapshot, artifact.repository.source);
    assert.deepEqual(stored.filter((name) => /(^|\/)(cache|lost\+found)(\/|$)|\.tmp$|touch pwned/.test(name) && name !== "a/cache" && name !== "a/cache/kept"), [], "nothing excluded is stored");
    for (const name of ["keep.txt", ".secret.key", "a/cache/kept", "sub/data.bin"]) assert.ok(stored.includes(name), `${name} is stored`);
    assert.deepEqual(artifact.facts.excludePaths, ["cache/**", "*.tmp", "lost+found", hostileName]);
    assert.deepEqual(artifact.facts.secretPaths, [".secret.key"]);
    assert.equal(artifact.facts.files, 4, "keep.txt, .secret.key, a/cache/kept, sub/data.bin");
    if (engine === "repository") assert.equal(artifact.repository.files, 4, "restic counts the same files");
    assert.ok(!(await inVolumes([`${volume}:/data`], "ls /data")).split("\n").includes("pwned"), "no pattern reached a shell");
  });

  test("a restore keeps the live excluded paths and the live secret file; the preview lists them", async () => {
    await inVolumes([`${volume}:/data`], "cd /data && echo changed > keep.txt && echo live > cache/a && echo new > cache/new && echo v2 > .secret.key && echo live > x.tmp");
    const preview = await composure("restore", { ...env, SERVICE: "app", DRY_RUN: "1" });
    assert.equal(preview.code, 0, preview.stderr);
    assert.match(preview.stdout, /keep what the backup left out \(cache\/\*\*, .*\) as the live volume has it \(CLEAN=1 removes it\)/);
    assert.match(preview.stdout, /keep the live secret paths \(\.secret\.key: \.secret\.key; what the live volume lacks comes from the backup; RESTORE_SECRETS=1/);
    const restore = await composure("restore", { ...env, SERVICE: "app", FORCE: "1", NO_RESCUE: "1" });
    assert.equal(restore.code, 0, restore.stderr);
    const after = await contents(volume);
    assert.equal(after["./keep.txt"], "keep", "the backed-up file is restored");
    assert.deepEqual([after["./cache/a"], after["./cache/new"], after["./cache/sub/b"], after["./x.tmp"], after["./lost+found/f"]], ["live", "new", "deeper", "live", "lost"], "excluded paths as the live volume had them");
    assert.equal(after["./.secret.key"], "v2", "the live secret file is kept");
  });

  test("RESTORE_SECRETS=1 restores the secret file; CLEAN=1 removes what the backup left out", async () => {
    const secrets = await composure("restore", { ...env, SERVICE: "app", FORCE: "1", NO_RESCUE: "1", RESTORE_SECRETS: "1" });
    assert.equal(secrets.code, 0, secrets.stderr);
    assert.equal((await contents(volume))["./.secret.key"], "v1");
    assert.equal((await contents(volume))["./cache/a"], "live", "still keeps the excluded paths");
    await inVolumes([`${volume}:/data`], "rm /data/.secret.key");
    const missing = await composure("restore", { ...env, SERVICE: "app", FORCE: "1", NO_RESCUE: "1" });
    assert.equal(missing.code, 0, missing.stderr);
    assert.equal((await contents(volume))["./.secret.key"], "v1", "a secret file the live volume lacks comes from the backup");
    await inVolumes([`${volume}:/data`], "echo v3 > /data/.secret.key");
    const clean = await composure("restore", { ...env, SERVICE: "app", FORCE: "1", NO_RESCUE: "1", CLEAN: "1" });
    assert.equal(clean.code, 0, clean.stderr);
    const after = await contents(volume);
    assert.deepEqual(Object.keys(after).filter((name) => /cache\/(a|new)|\.tmp$|lost\+found/.test(name)), [], "CLEAN=1: nothing the backup left out remains");
    assert.equal(after["./.secret.key"], "v3", "CLEAN=1 keeps the live secret file");
    assert.equal(after["./a/cache/kept"], "kept");
  });

  test("onto a fresh host (the volume does not exist) the secret file comes from the backup, saying so", async () => {
    await project.down();
    const restore = await composure("restore", { ...env, FORCE: "1" });
    assert.equal(restore.code, 0, restore.stderr);
    assert.match(restore.stderr, /restored the secret paths \(\.secret\.key\) from the backup: the volume is new/);
    const after = await contents(volume);
    assert.equal(after["./.secret.key"], "v1");
    assert.equal(after["./cache/a"], undefined);
    await project.up();
  });

  /** Names in an archive file, relative ("./a" -> "a"). */
  async function archiveNames(file: string): Promise<string[]> {
    const listing = await sh("sh", ["-c", 'zstd -d -q -c -- "$1" | tar tf -', "sh", file]);
    return listing.split("\n").map((name) => name.replace(/^\.\//, "").replace(/\/$/, "")).filter((name) => name && name !== ".");
  }

  /** Names in a restic snapshot, relative to the source (/v/0). */
  /** The names under the snapshot's source folder (the volume's mountpoint, or /v/0 in a helper). */
  async function snapshotNames(snapshot: string, source: string): Promise<string[]> {
    const listing = await resticOf(destination, project.name).run("ls", "--no-lock", snapshot);
    return listing.split("\n").filter((line) => line.startsWith(`${source}/`)).map((line) => line.slice(source.length + 1));
  }
});

describe("tags, notes and pins", { timeout: 600_000 }, () => {
  const project = busyboxProject("cmpt-pins", { app: ["data:/data"] });
  const destination = tempDir("pins-dest");
  const config = path.join(tempDir("pins-config"), "composure.yml");
  writeFileSync(config, "retention:\n  local: { keep_last: 1 }\n  pin_tags: [pre-upgrade]\n  require_verified: false\n");
  const env = { PROJECT: project.name, DESTINATION: destination, CONFIG: config };
  const ids: string[] = [];

  before(async () => {
    await requireDocker();
    await project.up();
    const marks: Record<string, string>[] = [{}, { TAG: "pre-upgrade", NOTE: "before 2.0" }, { TAG: "weekly" }, {}];
    for (const mark of marks) {
      const backup = await composure("backup", { ...env, ...mark });
      assert.equal(backup.code, 0, backup.stderr);
      ids.push(backupsOf(path.join(destination, project.name), "plain").runIds().at(-1)!);
      await new Promise((resolve) => setTimeout(resolve, 1100)); // one run id per second
    }
  });
  after(async () => {
    await project.down().catch(() => undefined);
  });

  test("make list TAG= shows only the tagged runs, with their tags and note", async () => {
    const listed = await composure("list", { ...env, TAG: "pre-upgrade" }, ["--json"]);
    assert.equal(listed.code, 0, listed.stderr);
    const rows = JSON.parse(listed.stdout);
    assert.deepEqual(rows.map((row: { run: string; tags: string[]; note: string; pinned: boolean }) => [row.run, row.tags, row.note, row.pinned]), [[ids[1], ["pre-upgrade"], "before 2.0", true]]);
    const bad = await composure("backup", { ...env, TAG: "ok,$(touch pwned)" });
    assert.equal(bad.code, 2, "a bad tag is refused before anything runs");
    assert.match(bad.stderr, /is not a tag/);
  });

  test("a pinned run survives a prune whose policy would delete it, and make prune says why", async () => {
    const pin = await composure("pin", { ...env, RUN: ids[2] }, ["pin"]);
    assert.equal(pin.code, 0, pin.stderr);
    const prune = await composure("prune", env);
    assert.equal(prune.code, 0, prune.stderr);
    const line = (id: string) => prune.stdout.split("\n").find((entry) => entry.includes(` ${id} `)) ?? "";
    assert.match(line(ids[0]), /delete .*not kept by any rule/);
    assert.match(line(ids[1]), /keep .*pinned/, "pinned by retention.pin_tags");
    assert.match(line(ids[2]), /keep .*pinned/, "pinned by make pin");
    assert.match(line(ids[3]), /keep .*last 1 of 1/);
    assert.deepEqual(backupsOf(path.join(destination, project.name), "plain").runIds(), ids.slice(1));
    const unpin = await composure("pin", { ...env, RUN: ids[2] }, ["unpin"]);
    assert.equal(unpin.code, 0, unpin.stderr);
    assert.equal((await composure("prune", env)).code, 0);
    assert.deepEqual(backupsOf(path.join(destination, project.name), "plain").runIds(), [ids[1], ids[3]], "unpinned, the policy decides again");
  });
});

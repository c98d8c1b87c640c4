// Stop mode on the repository engine hands the volume to restic before the service stops: restic
// opens the repository (key derivation, lock) while the service still runs, and reads nothing
// before the stop is over. A service that takes three seconds to stop writes its last words on
// the way out: they must be in the snapshot. A stop that fails leaves no snapshot and no lock.
import assert from "node:assert/strict";
import { existsSync, readdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { resticOf } from "../support/restic.ts";
import { ComposeProject, composure, docker, requireDocker, tempDir, waitFor } from "../support/composure.ts";

const project = new ComposeProject(
  `cmpt-gate${process.pid}`,
  `version: "3.8"
services:
  writer:
    image: $BUSYBOX
    command: ["sh", "-c", "trap 'sleep 3; echo stopped > /data/last-words; exit 0' TERM; echo running > /data/first-words; while :; do sleep 1 & wait; done"]
    volumes: ["data:/data"]
    labels: { composure.storage: repository }
volumes: { data: {} }
`,
);
const destination = tempDir("gate-dest");
const env = { PROJECT: project.name, DESTINATION: destination };
const { repository, run: restic, snapshotIds } = resticOf(destination, project.name);

describe("repository engine, stop mode: restic waits at the gate", { timeout: 600_000 }, () => {
  before(async () => {
    await requireDocker();
    await project.up();
  });
  after(async () => {
    await project.down().catch(() => undefined);
  });

  test("what the service writes while it stops is in the snapshot", async () => {
    const outcome = await composure("backup", env);
    assert.equal(outcome.code, 0, outcome.stderr);
    const [snapshot] = await snapshotIds();
    const names = (await restic("ls", "--json", "--no-lock", snapshot))
      .split("\n")
      .filter((line) => line.includes('"struct_type":"node"'))
      .map((line) => (JSON.parse(line) as { name: string }).name);
    assert.ok(names.includes("first-words"), `the snapshot holds the volume: ${names.join(", ")}`);
    assert.ok(names.includes("last-words"), `restic read the volume only after the service had stopped: ${names.join(", ")}`);
    assert.ok(await project.running("writer"), "the service runs again");
  });

  test("a stop that fails: restic held the repository open, then ends without a snapshot or a lock", async () => {
    const before = await snapshotIds();
    const marker = path.join(tempDir("failpoint"), "reached");
    const child = composure("backup", { ...env, COMPOSURE_FAILPOINT: "backup:stop", COMPOSURE_FAILPOINT_MARKER: marker });
    await waitFor("the failpoint before the stop", () => existsSync(marker), 120_000, 50);
    assert.ok(readdirSync(path.join(repository, "locks")).length > 0, "restic opened the repository before the stop");
    assert.ok(await project.running("writer"), "the service still runs while restic waits");
    await docker("rm", "-f", await project.containerId("writer")); // its stop now fails
    writeFileSync(`${marker}.continue`, "");
    const outcome = await child;
    assert.equal(outcome.code, 1, outcome.stderr);
    assert.match(outcome.stderr, /writer: backup failed/);
    assert.deepEqual(await snapshotIds(), before, "no snapshot of a tree read without the stop");
    await waitFor("restic's lock to go", () => readdirSync(path.join(repository, "locks")).length === 0, 30_000, 100);
    await restic("check");
  });
});

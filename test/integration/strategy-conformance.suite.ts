// The strategy conformance suite: every strategy's small fixture (test/support/strategy-fixtures.ts)
// in one Compose stack, put through the same contract, in the spirit of restic's backend suite:
// - a backup taken while writers commit is consistent: the restore drill of every service
//   answers with the facts recorded (archive engine), hot services never restart, and what a
//   drill reads of production (a snapshot repository) stays byte for byte as it was, and no
//   drill leaves anything behind;
// - after damage, a dry-run restore changes nothing, and a restore (repository engine) brings
//   back exactly the checksummed data, which the strategy's own probe finds as recorded;
// - a service whose container is stopped fails alone, with a message naming it;
// - no secret in any process's argv, in any log, manifest, archive or metrics file.
// A new strategy joins by adding its fixture; what only one strategy does stays in its own suite.
import assert from "node:assert/strict";
import { readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { backupsOf, ComposeProject, composure, docker, requireDocker, snapshotVolume, tempDir, type Outcome } from "../support/composure.ts";
import { cassandraTurn } from "../support/cassandra.ts";
import { strategyKinds } from "../../scripts/lib/strategies/registry.ts";
import { probeLive } from "../support/probe.ts";
import { fixtureStackYaml, strategyFixtures, type Stack } from "../support/strategy-fixtures.ts";
import { filesContaining, watchArgv } from "../support/writers.ts";

const fixtures = strategyFixtures;
const project = new ComposeProject(`cmpt-conform${process.pid}`, fixtureStackYaml(fixtures));
const destination = tempDir("conformance-dest");
const env = { PROJECT: project.name, DESTINATION: destination };
const { runIds, manifestOf } = backupsOf(path.join(destination, project.name), "plain");
const ids = new Map<string, string>();
const stack: Stack = {
  project,
  async container(service) {
    if (!ids.has(service)) ids.set(service, await project.containerId(service));
    return ids.get(service)!;
  },
};
const secrets = fixtures.flatMap((fixture) => fixture.secrets);
const argvHits: string[] = [];
const outputs: Outcome[] = [];

/** A composure command with every process's argv watched for secrets; its output kept for the secret check. */
async function run(name: string, extra: Record<string, string> = {}, args: string[] = []): Promise<Outcome> {
  const watcher = watchArgv(secrets);
  const outcome = await composure(name, { ...env, ...extra }, args);
  argvHits.push(...(await watcher.stop()).hits);
  outputs.push(outcome);
  return outcome;
}

/** Containers, volumes and networks of this project's drills. */
async function drillLeftovers(): Promise<string> {
  const mine = `label=composure.drill.source=${project.name}`;
  return [await docker("ps", "-aq", "--filter", mine), await docker("volume", "ls", "-q", "--filter", mine), await docker("network", "ls", "-q", "--filter", mine)].join("").trim();
}

const startedAt = async (service: string) => docker("inspect", "-f", "{{.State.StartedAt}}", await stack.container(service));
const eachFixture = <T>(work: (fixture: (typeof fixtures)[number]) => Promise<T>) => Promise.all(fixtures.map(work));
const recordOf = (runId: string, service: string) => manifestOf(runId).services.find((record: { name: string }) => record.name === service);

describe("strategy conformance: every strategy, the same contract", { timeout: 1_800_000 }, () => {
  let releaseTurn = () => undefined as void;

  before(async () => {
    await requireDocker();
    releaseTurn = await cassandraTurn();
    await project.up();
    await eachFixture((fixture) => fixture.ready(stack));
    await eachFixture((fixture) => fixture.seed(stack));
  });
  after(async () => {
    await project.down().catch(() => undefined);
    rmSync(destination, { recursive: true, force: true });
    releaseTurn();
  });

  test("every registered strategy has a fixture here", () => {
    assert.deepEqual(fixtures.map((fixture) => fixture.strategy).sort(), [...strategyKinds].sort());
  });

  test("a backup under writers is consistent: every restore drill answers as recorded, and hot services never restart", async () => {
    const hot = fixtures.filter((fixture) => fixture.hot);
    const startedBefore = await Promise.all(hot.map((fixture) => startedAt(fixture.service)));
    const stops = await Promise.all(fixtures.filter((fixture) => fixture.write).map((fixture) => fixture.write!(stack)));
    const backup = await run("backup");
    await Promise.all(stops.map((stop) => stop()));
    assert.equal(backup.code, 0, backup.stderr);
    const runId = runIds().at(-1)!;
    for (const fixture of fixtures) {
      const record = recordOf(runId, fixture.service);
      assert.equal(record?.strategy, fixture.strategy, `${fixture.service} is captured by the ${fixture.strategy} strategy`);
      assert.equal(record.status, "ok", `${fixture.service}: ${record.error}`);
      assert.ok(record.artifacts.length > 0, `${fixture.service} has artifacts`);
      if (fixture.hot) assert.equal(record.downtimeSeconds, 0, `${fixture.service} is captured hot`);
      else assert.ok(record.downtimeSeconds > 0 && record.stopped.length > 0, `${fixture.service} is stopped for its capture`);
    }
    assert.deepEqual(await Promise.all(hot.map((fixture) => startedAt(fixture.service))), startedBefore, "no hot service was restarted");
    for (const fixture of fixtures) assert.ok(await project.running(fixture.service), `${fixture.service} runs after the backup`);

    const untouched = fixtures.flatMap((fixture) => fixture.untouchedByDrills ?? []).map((name) => project.volume(name));
    const before = await Promise.all(untouched.map(snapshotVolume));
    const drill = await run("verify", { DEEP: "1", RUN: runId }, ["--json"]);
    assert.equal(drill.code, 0, drill.stderr);
    const results = JSON.parse(drill.stdout).drill.results as { service: string; strategy: string; ok: boolean; message: string; differences: string[] }[];
    for (const fixture of fixtures) {
      const result = results.find((candidate) => candidate.service === fixture.service);
      assert.ok(result, `the drill covers ${fixture.service}`);
      assert.ok(result.ok, `${fixture.service}: ${result.message}`);
      assert.deepEqual(result.differences, [], `${fixture.service}: the restored copy answers with the recorded facts`);
    }
    assert.deepEqual(await Promise.all(untouched.map(snapshotVolume)), before, `the drill left ${untouched.join(", ")} of production byte for byte as they were`);
    assert.deepEqual(await Promise.all(hot.map((fixture) => startedAt(fixture.service))), startedBefore, "the drill restarted no production service");
    assert.equal(await drillLeftovers(), "", "no drill container, volume or network remains");
    console.log(`# conformance drill of ${results.length} services: ${results.map((result) => result.service).join(", ")}`);
  });

  test("on the repository engine a drill passes; after damage a dry run changes nothing, and a restore brings back exactly the data, which the probe finds as recorded", async () => {
    const expected = await eachFixture((fixture) => fixture.checksum(stack));
    const backup = await run("backup", { STORAGE: "repository" });
    assert.equal(backup.code, 0, backup.stderr);
    const runId = runIds().at(-1)!;
    for (const fixture of fixtures) {
      const inRepository = recordOf(runId, fixture.service).artifacts.map((artifact: { repository?: unknown }) => Boolean(artifact.repository));
      assert.ok(inRepository.length > 0 && inRepository.every((stored: boolean) => stored === !fixture.archiveOnly), `${fixture.service} is stored ${fixture.archiveOnly ? "in archives" : "in the repository"}`);
    }

    const drill = await run("verify", { DEEP: "1", RUN: runId }, ["--json"]);
    assert.equal(drill.code, 0, drill.stderr);
    const answered = (JSON.parse(drill.stdout).drill.results as { service: string; ok: boolean }[]).filter((result) => result.ok).map((result) => result.service);
    assert.deepEqual(answered.sort(), fixtures.map((fixture) => fixture.service).sort(), "every service's drill of the repository run answers as recorded");

    await eachFixture((fixture) => fixture.damage(stack));
    // A damaged service may not answer the checksum at all (a dropped table): that is a state too.
    const damagedState = () => eachFixture((fixture) => fixture.checksum(stack).catch((error: Error) => `unreadable: ${error.message.split("\n")[0]}`));
    const damaged = await damagedState();
    fixtures.forEach((fixture, index) => assert.notEqual(damaged[index], expected[index], `the damage changed ${fixture.service}`));

    const dry = await run("restore", { RUN: runId, DRY_RUN: "1" });
    assert.equal(dry.code, 0, dry.stderr);
    for (const fixture of fixtures) assert.match(dry.stdout, new RegExp(`^${fixture.service}: `, "m"), `the dry run names ${fixture.service}`);
    assert.deepEqual(await damagedState(), damaged, "the dry run changed nothing");

    const restore = await run("restore", { RUN: runId, FORCE: "1" });
    assert.equal(restore.code, 0, restore.stderr);
    await eachFixture((fixture) => fixture.ready(stack));
    const restored = await eachFixture((fixture) => fixture.checksum(stack));
    fixtures.forEach((fixture, index) => assert.equal(restored[index], expected[index], `${fixture.service} holds exactly the data backed up`));

    const runDir = path.join(destination, project.name, runId);
    for (const fixture of fixtures) {
      const probe = await probeLive(project.name, runDir, fixture.service);
      assert.deepEqual(probe.differences, [], `${fixture.service}: the probe finds the recorded facts`);
      assert.equal(probe.ok, true, `${fixture.service}: ${JSON.stringify(probe.facts).slice(0, 400)}`);
    }
  });

  test("a service whose container is stopped fails alone, with a message naming it", async () => {
    const stopped = fixtures.filter((fixture) => fixture.needsRunning);
    await Promise.all(stopped.map(async (fixture) => docker("stop", await stack.container(fixture.service))));
    const backup = await run("backup");
    assert.equal(backup.code, 1, backup.stderr);
    const runId = runIds().at(-1)!;
    assert.equal(manifestOf(runId).outcome, fixtures.length > stopped.length ? "partial" : "failed");
    for (const fixture of fixtures) {
      const record = recordOf(runId, fixture.service);
      if (!fixture.needsRunning) {
        assert.equal(record.status, "ok", `${fixture.service} is still backed up: ${record.error}`);
        continue;
      }
      assert.equal(record.status, "failed", `${fixture.service} cannot be captured without its container`);
      assert.match(backup.stderr, new RegExp(`${fixture.service}: backup failed: .*(no running container|not running|no container of service ${fixture.service} is running)`), `the error of ${fixture.service} says why`);
    }
  });

  test("no secret in any process's argv, log, manifest, archive or metrics file", async () => {
    assert.ok(secrets.length > 0, "the fixtures hold secrets to look for");
    assert.deepEqual(argvHits, [], "no argv held a secret");
    for (const outcome of outputs) for (const secret of secrets) assert.ok(!outcome.stdout.includes(secret) && !outcome.stderr.includes(secret), "no log line holds a secret");
    assert.deepEqual(await filesContaining(path.join(destination, project.name), secrets), [], "no file of the destination holds a secret");
    const metrics = readFileSync(path.join(os.tmpdir(), "composure-test-metrics", `composure-${project.name}.prom`), "utf8");
    assert.match(metrics, /composure_last_run_success/);
    for (const secret of secrets) assert.ok(!metrics.includes(secret), "the metrics hold no secret");
  });
});

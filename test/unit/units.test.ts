// Units of a backup: which services must be captured one after another, and the pool that runs
// units side by side.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { ServiceInfo } from "../../scripts/lib/compose/discover.ts";
import type { MountInfo } from "../../scripts/lib/docker/containers.ts";
import type { ServiceSettings } from "../../scripts/lib/config/schema.ts";
import { inParallel, startOrder, StopWindow, unitsOf } from "../../scripts/lib/pipeline/units.ts";
import type { PlannedService } from "../../scripts/lib/pipeline/plan.ts";

const volume = (source: string): MountInfo => ({ type: "volume", source, destination: `/${source}`, readOnly: false });
const bind = (source: string): MountInfo => ({ type: "bind", source, destination: "/etc/app", readOnly: true });

function service(name: string, mounts: MountInfo[], dependsOn: string[] = []): ServiceInfo {
  const container = { id: name, name: `p-${name}-1`, image: "img", labels: {}, running: true, startedAt: "", mounts, networkMode: "default", links: [], env: [], addresses: [] };
  return { project: "p", name, image: "img", labels: {}, containers: [container], dependsOn };
}

function planned(info: ServiceInfo, strategy: string, settings: ServiceSettings = {}, captured: MountInfo[] = []): PlannedService {
  return { service: info, settings, strategy, strategySource: "default", excluded: false, mounts: captured.map((mount) => ({ mount, archiveName: mount.source, sharedWith: [] })), skipped: [] };
}

const namesOf = (units: PlannedService[][]) => units.map((unit) => unit.map((entry) => entry.service.name));

test("independent services are units of their own, in plan order", () => {
  const services = [planned(service("db", [volume("pg")]), "postgres"), planned(service("cache", [volume("redis")]), "redis"), planned(service("files", [volume("files")]), "volume")];
  assert.deepEqual(namesOf(unitsOf({ project: { name: "p", services: services.map((entry) => entry.service) }, services })), [["db"], ["cache"], ["files"]]);
});

test("services sharing a volume, a cluster's members and a stop-mode service's dependents go together", () => {
  const app = service("app", [volume("uploads")], ["files"]);
  const worker = service("worker", [volume("uploads")]);
  const files = service("files", [volume("files")]);
  const cass1 = service("cass1", [volume("c1")]);
  const cass2 = service("cass2", [volume("c2")]);
  const db = service("db", [volume("pg")]);
  const services = [planned(app, "volume", { stop: false }), planned(worker, "volume", { stop: false }), planned(files, "volume"), planned(cass1, "cassandra"), planned(cass2, "cassandra"), planned(db, "postgres")];
  const units = namesOf(unitsOf({ project: { name: "p", services: services.map((entry) => entry.service) }, services }));
  assert.deepEqual(units, [["app", "worker", "files"], ["cass1", "cass2"], ["db"]]);
});

test("units start hot ones first, the longest by the previous run first (unknown ones as longest), then the stop-mode ones in plan order", () => {
  const entries = ["files", "db", "cache", "new", "web", "search"].map((name) => planned(service(name, [volume(name)]), ["files", "web"].includes(name) ? "volume" : "postgres"));
  const units = entries.map((entry) => [entry]);
  const previous = new Map([["files", 30], ["db", 2], ["cache", 9], ["web", 1], ["search", 9]]);
  assert.deepEqual(namesOf(startOrder(units, previous)), [["new"], ["cache"], ["search"], ["db"], ["files"], ["web"]]);
  assert.deepEqual(namesOf(startOrder(units, new Map())), [["db"], ["cache"], ["new"], ["search"], ["files"], ["web"]], "no previous run: plan order, hot ones first");
});

test("a hot service's dependents stay apart, and so do services sharing only a bind mount nobody backs up", () => {
  const db = service("db", [volume("pg"), bind("/srv/config")]);
  const app = service("app", [volume("app"), bind("/srv/config")], ["db"]);
  const services = [planned(db, "postgres"), planned(app, "volume", { stop: false })];
  assert.deepEqual(namesOf(unitsOf({ project: { name: "p", services: services.map((entry) => entry.service) }, services })), [["db"], ["app"]]);
  const backedUp = [planned(db, "postgres"), planned(app, "volume", { stop: false }, [bind("/srv/config")])];
  assert.deepEqual(namesOf(unitsOf({ project: { name: "p", services: backedUp.map((entry) => entry.service) }, services: backedUp })), [["db", "app"]]);
});

test("excluded services are in no unit", () => {
  const services = [planned(service("db", [volume("pg")]), "postgres"), { ...planned(service("tmp", [volume("pg")]), "volume"), excluded: true }];
  assert.deepEqual(namesOf(unitsOf({ project: { name: "p", services: services.map((entry) => entry.service) }, services })), [["db"]]);
});

test("the pool runs at most `limit` at once and keeps the order of the results", async () => {
  let running = 0;
  let most = 0;
  const results = await inParallel([50, 10, 30, 20, 40], 2, async (ms) => {
    running += 1;
    most = Math.max(most, running);
    await new Promise((resolve) => setTimeout(resolve, ms));
    running -= 1;
    return ms * 2;
  });
  assert.deepEqual(results, [100, 20, 60, 40, 80]);
  assert.equal(most, 2);
});

test("the stop window: a stopped service's capture runs alone, after the hot sessions whose turn came first opened and the hot bytes in flight moved", async () => {
  const window = new StopWindow();
  const events: string[] = [];
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
  const capture = async (name: string, stops: boolean, openMs: number, moveMs: number) => {
    const turn = window.turn(stops); // taken before any await, as the pipeline does
    await sleep(1);
    await turn.begin();
    events.push(`${name} opens`);
    await sleep(openMs);
    turn.opened();
    await turn.clear();
    events.push(`${name} moves`);
    await sleep(moveMs);
    events.push(`${name} done`);
    turn.end();
  };
  await Promise.all([capture("snapshot", false, 30, 20), capture("app", true, 5, 30), capture("late", false, 5, 5)]);
  assert.deepEqual(events.slice(0, 4), ["snapshot opens", "app opens", "app moves", "app done"], "the hot session whose turn came first opens; then the stopped service is captured alone");
  assert.deepEqual(new Set(events.slice(4)), new Set(["snapshot moves", "snapshot done", "late opens", "late moves", "late done"]), "the hot captures go on after it");

  // A stop-mode turn taken while a hot capture moves bytes waits for its end.
  const moving = new StopWindow();
  const hotTurn = moving.turn(false);
  await hotTurn.begin();
  hotTurn.opened();
  await hotTurn.clear();
  const stopTurn = moving.turn(true);
  let stopped = false;
  const stopping = stopTurn.begin().then(() => (stopped = true));
  await sleep(10);
  assert.equal(stopped, false, "no stop while a hot capture moves bytes");
  hotTurn.end();
  await stopping;
  stopTurn.end();
  assert.equal(window.busy, false);

  const second = new StopWindow();
  const failed = second.turn(true);
  const hot = second.turn(false);
  let moved = false;
  const hotCapture = (async () => (await hot.begin(), hot.opened(), await hot.clear(), (moved = true)))();
  await sleep(10);
  assert.equal(moved, false, "a hot capture queued behind a stop-mode one waits");
  failed.end();
  failed.end(); // idempotent
  await hotCapture;
  assert.equal(moved, true, "a stop-mode turn that ended without a capture (it failed first) frees the window");
  hot.end();
  assert.equal(second.busy, false);
});

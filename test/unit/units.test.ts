// Units of a backup: which services must be captured one after another, and the pool that runs
// units side by side.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { ServiceInfo } from "../../scripts/lib/compose/discover.ts";
import type { MountInfo } from "../../scripts/lib/docker/containers.ts";
import type { ServiceSettings } from "../../scripts/lib/config/schema.ts";
import { inParallel, StopWindow, unitsOf } from "../../scripts/lib/pipeline/units.ts";
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

test("the stop window: one stopped service's capture at a time, hot captures move bytes only once none holds or waits for it", async () => {
  const window = new StopWindow();
  const events: string[] = [];
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
  const stopMode = (name: string, ms: number) => window.hold(async () => (events.push(`${name} down`), await sleep(ms), events.push(`${name} up`)));
  const hot = async (name: string) => (await window.clear(), events.push(`${name} moves`));
  assert.equal(window.busy, false);
  await hot("before");
  const all = Promise.all([stopMode("a", 30), stopMode("b", 10), hot("cache"), hot("db")]);
  assert.equal(window.busy, true);
  await all;
  assert.deepEqual(events, ["before moves", "a down", "a up", "b down", "b up", "cache moves", "db moves"]);
  assert.equal(window.busy, false);
  await assert.rejects(window.hold(async () => Promise.reject(new Error("stop failed"))), /stop failed/);
  assert.equal(window.busy, false, "a failed capture leaves the window");
  await hot("after");
});

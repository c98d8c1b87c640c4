// The order of a whole-run restore (dependencies before their dependents, name order otherwise)
// and the summary table at its end: pure functions, no Docker.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { dependenciesFirst, type ProjectInfo } from "../../scripts/lib/compose/discover.ts";
import { failureOf, shortForm, summaryLines, type ServiceResult } from "../../scripts/lib/pipeline/restore-report.ts";
import { StepError } from "../../scripts/lib/errors.ts";

/** A project whose services depend as given: { app: ["db"] } is app depends_on db. */
function projectOf(dependencies: Record<string, string[]>): ProjectInfo {
  const services = Object.entries(dependencies).map(([name, dependsOn]) => ({ project: "p", name, image: "x", labels: {}, containers: [], dependsOn }));
  return { name: "p", services };
}

describe("dependenciesFirst", () => {
  test("independent services keep name order, whatever order they are given in", () => {
    const project = projectOf({ c: [], a: [], b: [] });
    assert.deepEqual(dependenciesFirst(project, ["c", "b", "a"]), ["a", "b", "c"]);
  });

  test("a database comes before the app that depends on it; the others stay in name order", () => {
    const project = projectOf({ app: ["db"], cache: [], db: [], worker: ["db", "cache"] });
    assert.deepEqual(dependenciesFirst(project, ["app", "cache", "db", "worker"]), ["cache", "db", "app", "worker"]);
  });

  test("a chain is restored from its end", () => {
    const project = projectOf({ a: ["b"], b: ["c"], c: ["d"], d: [] });
    assert.deepEqual(dependenciesFirst(project, ["a", "b", "c", "d"]), ["d", "c", "b", "a"]);
  });

  test("a dependency through a service that is not restored still orders the two", () => {
    const project = projectOf({ app: ["proxy"], proxy: ["zdb"], zdb: [] });
    assert.deepEqual(dependenciesFirst(project, ["app", "zdb"]), ["zdb", "app"]);
  });

  test("a cycle is broken at its first name and ends; what is free to go goes first", () => {
    const project = projectOf({ a: ["b"], b: ["a"], c: ["a"], z: [] });
    assert.deepEqual(dependenciesFirst(project, ["c", "b", "a", "z"]), ["z", "a", "b", "c"]);
  });

  test("services the project has no containers for go last, in name order", () => {
    const project = projectOf({ app: ["db"], db: [] });
    assert.deepEqual(dependenciesFirst(project, ["zeta", "app", "alpha", "db"]), ["db", "app", "alpha", "zeta"]);
    assert.deepEqual(dependenciesFirst(projectOf({}), ["b", "a"]), ["a", "b"], "a fresh host before up: name order");
  });

  test("each name once, and nothing that was not asked for", () => {
    const project = projectOf({ app: ["db"], db: [], other: [] });
    assert.deepEqual(dependenciesFirst(project, ["app", "app"]), ["app"]);
  });
});

describe("restore summary", () => {
  const ok: ServiceResult = { name: "app", strategy: "volume", result: "ok", seconds: 1.25, lines: ["restored volume data from app/data.tar.zst", "started app"] };
  const failed: ServiceResult = { name: "db", strategy: "mariadb", result: "failed", seconds: 0, lines: [], error: "restore of service db failed: the database server is not ready", next: "fix the cause" };

  test("a table with a headline naming the failures, one aligned row per service in the given order", () => {
    const lines = summaryLines("20250101T000000Z", "shop", [failed, ok]);
    assert.equal(lines[0], "restore of run 20250101T000000Z into project shop: 1 of 2 services restored, 1 failed (db)");
    assert.deepEqual(lines.slice(1), [
      "  SERVICE  STRATEGY  RESULT  TIME   WHAT IT DID",
      "  db       mariadb   failed  0.0 s  restore of service db failed: the database server is not ready",
      "  app      volume    ok      1.3 s  restored volume data from app/data.tar.zst (+1 more)",
    ]);
    assert.equal(summaryLines("r", "shop", [ok])[0], "restore of run r into project shop: all 1 services restored");
  });

  test("long lines are shortened, an empty result says so", () => {
    const long = shortForm({ ...ok, lines: ["x".repeat(300)] });
    assert.equal(long.length, 100);
    assert.ok(long.endsWith("..."));
    assert.equal(shortForm({ ...ok, lines: [] }), "nothing to restore");
  });

  test("a failure's next step: the retry command, after the strategy's own hint when it has one", () => {
    const retry = "make restore PROJECT=shop RUN=r SERVICE=db FORCE=1";
    assert.equal(failureOf(new Error("boom"), retry).next, `fix the cause, then \`${retry}\` restores that service alone`);
    const hinted = failureOf(new StepError("restore", "db", new Error("down"), "start it"), retry);
    assert.equal(hinted.error, "restore of service db failed: down (start it)");
    assert.equal(hinted.next, `after that, \`${retry}\` restores that service alone`);
  });
});

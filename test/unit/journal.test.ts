// The one journal of a run: what a strategy made is written down before and struck off after,
// and a killed run's leftovers are undone by the next command through the strategy each names.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, test } from "node:test";
import { StopJournal, type JournalRecovery, type Leftover } from "../../scripts/lib/lifecycle/journal.ts";

const projectDir = () => mkdtempSync(path.join(os.tmpdir(), "composure-journal-"));
const journalFile = (dir: string) => path.join(dir, ".stopped.json");

function recording(fail: (leftover: Leftover) => boolean = () => false): JournalRecovery & { undone: Leftover[] } {
  const undone: Leftover[] = [];
  return {
    undone,
    cleanStaging: async () => undefined,
    async undoLeftover(leftover) {
      if (fail(leftover)) throw new Error(`cannot undo ${leftover.strategy}`);
      undone.push(leftover);
    },
  };
}

describe("run journal", () => {
  test("a leftover is written before and struck off after; the file goes when nothing is left", async () => {
    const dir = projectDir();
    const journal = new StopJournal(dir);
    const strikeOff = await journal.note("prometheus", "prom", { paths: ["snapshots/x"] });
    const written = JSON.parse(readFileSync(journalFile(dir), "utf8"));
    assert.deepEqual(written.leftovers.map((entry: Leftover) => [entry.strategy, entry.service, entry.data]), [["prometheus", "prom", { paths: ["snapshots/x"] }]]);
    await strikeOff();
    assert.equal(existsSync(journalFile(dir)), false);
  });

  test("the next command undoes a killed run's leftovers through the strategy each names, and keeps those it could not undo", async () => {
    const dir = projectDir();
    const killedRun = new StopJournal(dir);
    await killedRun.note("cassandra", "ring", { tag: "composure-x" });
    await killedRun.note("victoriametrics", "vm", { paths: ["snapshots/y"] });
    const recovery = recording((leftover) => leftover.strategy === "victoriametrics");
    await new StopJournal(dir).recover(recovery);
    assert.deepEqual(recovery.undone.map((entry) => entry.strategy), ["cassandra"]);
    const kept = JSON.parse(readFileSync(journalFile(dir), "utf8")).leftovers as Leftover[];
    assert.deepEqual(kept.map((entry) => entry.strategy), ["victoriametrics"], "the one that failed is tried again next time");
    const again = recording();
    await new StopJournal(dir).recover(again);
    assert.deepEqual(again.undone.map((entry) => entry.service), ["vm"]);
    assert.equal(existsSync(journalFile(dir)), false);
  });

  test("the pending-snapshot file of earlier versions is undone once and removed", async () => {
    const dir = projectDir();
    const legacy = path.join(dir, ".pending-snapshots.json");
    writeFileSync(legacy, JSON.stringify([{ service: "prom", product: "Prometheus", source: "shop_tsdb", kind: "volume", subpath: "", paths: ["snapshots/z"], since: "2026-11-01T00:00:00Z" }]));
    const recovery = recording();
    await new StopJournal(dir).recover(recovery);
    assert.deepEqual(recovery.undone.map((entry) => [entry.strategy, entry.service, entry.data.mount, entry.data.paths]), [["prometheus", "prom", "volume", ["snapshots/z"]]]);
    assert.equal(existsSync(legacy), false);
  });
});

// Acceptance of the cassandra strategy on a real 2-node Cassandra 5.0 cluster (the fixture image,
// replication factor 2), brought up once: a hot backup under a writer snapshots both nodes with
// one tag, restarts nothing and leaves no snapshot behind; after a dropped and a truncated table a
// restore brings back every row (checksums equal); a keyspace filter that matches nothing and a
// node without nodetool fail clearly and leave nothing behind; with a node down the run is
// partial, the error names the node, and the other node keeps no snapshot.
import assert from "node:assert/strict";
import { writeFileSync, existsSync } from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { backupsOf, ComposeProject, composure, docker, fixtureImage, inVolumes, requireDocker, seconds, sh, tempDir, waitFor } from "../support/composure.ts";
import { cassandraNode, cassandraTurn, cql, tableChecksums } from "../support/cassandra.ts";

const image = fixtureImage("cassandra");

// Node 2 starts once node 1 answers CQL; both join one ring (auto_bootstrap off on the fresh
// cluster, as in test/images/cassandra/compose.yml). `files` is a plain service backed up by the
// volume strategy, so that a run with a failed cluster is partial, not failed.
const node = (name: string, extra: string) => cassandraNode(name, { cluster: "composure", seed: "cassandra1", heap: "640M", labels: "{ composure.cassandra.cluster: ring }", extra });

const project = new ComposeProject(
  `cmpt-cass${process.pid}`,
  `
services:${node("cassandra1", "")}${node("cassandra2", `
      CASSANDRA_AUTO_BOOTSTRAP: "false"
    depends_on:
      cassandra1: { condition: service_healthy }`)}
  files:
    image: $BUSYBOX
    init: true
    command: ["sh", "-c", "echo hello > /files/hello && sleep 100000"]
    volumes: ["files:/files"]
volumes: { cassandra1-data: {}, cassandra2-data: {}, files: {} }
`,
);
const destination = tempDir("cassandra-dest");
const env = { PROJECT: project.name, DESTINATION: destination };
let node1: string;
let node2: string;


// 2 keyspaces, 4 tables, 222,000 rows: CSV files generated in node 1, loaded with cqlsh COPY FROM
// (prepared statements, batched by partition; consistency ONE, retried: a freshly started cluster
// on a busy machine times out writes at ALL). Reads at ALL (checksums) make the replicas agree.
const schema = `
CREATE KEYSPACE shop WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 2};
CREATE KEYSPACE ledger WITH replication = {'class': 'NetworkTopologyStrategy', 'datacenter1': 2};
CREATE TABLE shop.orders (region int, id int, customer text, amount decimal, PRIMARY KEY (region, id));
CREATE TABLE shop.items (order_id int, line int, sku text, qty int, PRIMARY KEY (order_id, line));
CREATE TABLE ledger.journal (day int, seq int, at timestamp, body text, PRIMARY KEY (day, seq));
CREATE TABLE ledger.tags (id int PRIMARY KEY, name text, weights list<int>);
`;
const generator = `
with open("/tmp/orders.csv", "w") as f:
    for region in range(80):
        for i in range(500): f.write("%d,%d,c%d,%d.%02d\\n" % (region, i, i % 97, i, i % 100))
with open("/tmp/items.csv", "w") as f:
    for order in range(1200):
        for line in range(100): f.write("%d,%d,sku-%d-%d,%d\\n" % (order, line, order, line, line % 7))
with open("/tmp/journal.csv", "w") as f:
    for day in range(600):
        for seq in range(100): f.write("%d,%d,%d,entry %d of day %d\\n" % (day, seq, 1700000000000 + day * 86400000 + seq, seq, day))
with open("/tmp/tags.csv", "w") as f:
    for i in range(2000): f.write('%d,tag %d,"[%d, %d]"\\n' % (i, i, i, i * 2))
`;
const load = `CONSISTENCY ONE;
COPY shop.orders (region, id, customer, amount) FROM '/tmp/orders.csv' WITH MAXATTEMPTS = 20;
COPY shop.items (order_id, line, sku, qty) FROM '/tmp/items.csv' WITH MAXATTEMPTS = 20;
COPY ledger.journal (day, seq, at, body) FROM '/tmp/journal.csv' WITH MAXATTEMPTS = 20;
COPY ledger.tags (id, name, weights) FROM '/tmp/tags.csv' WITH MAXATTEMPTS = 20;
`;
const tables = ["shop.orders", "shop.items", "ledger.journal", "ledger.tags"];
const loadedRows = 40_000 + 120_000 + 60_000 + 2_000;

/**
 * Per table: rows and sha256 of every row (cqlsh COPY TO, sorted): equal strings, equal content.
 * Read at consistency ALL: both replicas answer (a replica that missed a write is repaired).
 */
async function checksums(): Promise<Record<string, string>> {
  return tableChecksums(node1, tables);
}

/** Snapshot names on a node (nodetool listsnapshots), without Cassandra's own auto snapshots. */
async function composureSnapshots(container: string): Promise<string[]> {
  const output = await docker("exec", container, "nodetool", "listsnapshots");
  const names = output
    .split("\n")
    .map((line) => line.trim().split(/\s+/)[0])
    .filter((name) => name && !/^(Snapshot|Total|There)/.test(name));
  // truncated-<time>-<table> and dropped-<time>-<table>: Cassandra's auto_snapshot, ignored on purpose.
  return [...new Set(names.filter((name) => !/^(truncated|dropped)-/.test(name)))];
}

/** Leftovers in the nodes' volumes: snapshot directories of composure and restore staging. */
async function leftovers(): Promise<string> {
  return (
    await inVolumes(
      [`${project.volume("cassandra1-data")}:/v1:ro`, `${project.volume("cassandra2-data")}:/v2:ro`],
      "find /v1 /v2 \\( -path '*/snapshots/composure-*' -o -name composure-restore \\) -prune -print",
    )
  ).trim();
}

const { runIds, manifestOf } = backupsOf(path.join(destination, project.name), "plain");
const helpersLeft = () => docker("ps", "-aq", "--filter", `label=composure.helper=${project.name}`);

/** A cqlsh session inside node 1 fed INSERTs (about 100 a second) into one partition of shop.items. */
class Writer {
  private readonly done: Promise<string>;
  constructor() {
    const loop = "rm -f /tmp/stop-writer; i=0; while [ ! -e /tmp/stop-writer ]; do i=$((i+1)); echo \"INSERT INTO shop.items (order_id, line, sku, qty) VALUES (999999, $i, 'live', 1);\"; [ $((i % 10)) -eq 0 ] && sleep 0.1; done | cqlsh --request-timeout=60 > /dev/null 2>&1; true";
    this.done = docker("exec", node1, "sh", "-c", loop);
  }
  written = async () => Number(/"c": (\d+)/.exec(await cql(node1, "SELECT JSON count(*) AS c FROM shop.items WHERE order_id = 999999;\n"))?.[1] ?? 0);
  async stop(): Promise<void> {
    await docker("exec", node1, "touch", "/tmp/stop-writer");
    await this.done;
  }
}

describe("cassandra strategy on a 2-node cluster", { timeout: 900_000 }, () => {
  let quiescentSums: Record<string, string>;
  const suiteStarted = performance.now();

  let releaseTurn = () => undefined as void;
  before(async () => {
    await requireDocker();
    releaseTurn = await cassandraTurn();
    let started = performance.now();
    await project.up();
    node1 = await project.containerId("cassandra1");
    node2 = await project.containerId("cassandra2");
    await waitFor("cassandra2 to answer CQL", async () => (await docker("inspect", "-f", "{{.State.Health.Status}}", node2)) === "healthy", 300_000);
    await waitFor("both nodes UN in the ring", async () => ((await docker("exec", node1, "nodetool", "status")).match(/^UN /gm) ?? []).length === 2, 120_000);
    console.log(`# 2-node cluster up in ${seconds(started)} s`);
    started = performance.now();
    await cql(node1, schema);
    await sh("docker", ["exec", "-i", node1, "python3", "-"], generator);
    // cqlsh exits 2 after any timeout, even one its retries overcame: count the rows instead,
    // and load again (COPY FROM upserts) until every row is there.
    let rows = 0;
    for (let attempt = 1; rows !== loadedRows; attempt++) {
      assert.ok(attempt <= 3, `the cluster took ${rows} of ${loadedRows} rows after 2 loads`);
      await sh("docker", ["exec", "-i", node1, "sh", "-c", "cqlsh --request-timeout=120 > /tmp/load.log 2>&1; true"], load);
      const sums = await checksums();
      rows = tables.reduce((sum, table) => sum + (Number(sums[table].split(" ")[0]) || 0), 0);
    }
    console.log(`# ${rows} rows in 2 keyspaces, 4 tables loaded in ${seconds(started)} s`);
  });

  after(async () => {
    console.log(`# whole suite: ${seconds(suiteStarted)} s`);
    await project.down().catch(() => undefined);
    releaseTurn();
  });

  test("a backup under a writer snapshots both nodes with one tag, restarts nothing and leaves no snapshot", async () => {
    const startedAt = [await project.startedAt("cassandra1"), await project.startedAt("cassandra2")];
    const writer = new Writer();
    await waitFor("the writer's first rows", async () => (await writer.written()) > 20);
    const writtenBefore = await writer.written();
    const started = performance.now();
    const backup = await composure("backup", env);
    const took = seconds(started);
    const writtenAfter = await writer.written();
    await writer.stop();
    assert.equal(backup.code, 0, backup.stderr);
    assert.doesNotMatch(backup.stderr, /instead of composure's JMX client|JMX client is not built/, "every node's steps ran through composure's JMX client");
    assert.ok(writtenAfter > writtenBefore, `the writer kept inserting during the backup (${writtenBefore} -> ${writtenAfter} rows)`);
    assert.deepEqual([await project.startedAt("cassandra1"), await project.startedAt("cassandra2")], startedAt, "no node was restarted");

    const runId = runIds().at(-1)!;
    const manifest = manifestOf(runId);
    const byName = Object.fromEntries(manifest.services.map((service: { name: string }) => [service.name, service]));
    assert.equal(byName.cassandra1.strategy, "cassandra", "detected from the image");
    assert.deepEqual(byName.cassandra1.stopped, []);
    assert.deepEqual(byName.cassandra1.artifacts.map((artifact: { path: string }) => artifact.path), ["cassandra1/schema.cql.zst", "cassandra1/cassandra1-1.tar.zst", "cassandra1/cassandra2-1.tar.zst"]);
    assert.equal(byName.cassandra2.status, "ok");
    assert.deepEqual(byName.cassandra2.artifacts, []);
    assert.deepEqual(byName.cassandra2.facts, { cassandraCluster: "ring", capturedWith: "cassandra1" });
    assert.equal(byName.files.status, "ok");

    const tag = `composure-${runId}`;
    const [schemaArtifact, ...nodeArtifacts] = byName.cassandra1.artifacts;
    assert.deepEqual(schemaArtifact.facts.keyspaces, ["ledger", "shop"], "system keyspaces are left out");
    assert.deepEqual(schemaArtifact.facts.tableNames, ["ledger.journal", "ledger.tags", "shop.items", "shop.orders"]);
    assert.equal(schemaArtifact.facts.tag, tag);
    for (const table of ["shop.orders", "ledger.journal", "ledger.tags"]) assert.equal(typeof schemaArtifact.facts.counts[table], "number", `exact count of ${table}`);
    assert.equal(schemaArtifact.facts.counts["shop.orders"], 40_000);
    const schemaText = await sh("zstd", ["-dc", path.join(destination, project.name, runId, schemaArtifact.path)]);
    assert.match(schemaText, /CREATE KEYSPACE ledger WITH replication = \{'class': 'NetworkTopologyStrategy', 'datacenter1': '2'\}/);
    assert.match(schemaText, /CREATE TABLE shop\.items \(/);
    let rawBytes = 0;
    for (const artifact of nodeArtifacts) {
      assert.equal(artifact.facts.tag, tag, `${artifact.path} holds the one tag`);
      assert.equal(Object.keys(artifact.facts.tables).length, 4);
      rawBytes += artifact.facts.rawBytes;
      const listing = await sh("sh", ["-c", `zstd -dc '${path.join(destination, project.name, runId, artifact.path)}' | tar tf -`]);
      const names = listing.split("\n").filter(Boolean);
      assert.ok(names.length > 20, `${artifact.path} has the SSTables`);
      assert.ok(names.every((name) => name.startsWith("var/lib/cassandra/data/") && name.includes(`/snapshots/${tag}/`)), `${artifact.path} holds only snapshots/${tag}`);
      assert.ok(names.some((name) => /\/shop\/items-[0-9a-f]{32}\/snapshots\/.*-Data\.db$/.test(name)), "with the data files");
    }
    const stored = byName.cassandra1.artifacts.reduce((sum: number, artifact: { bytes: number }) => sum + artifact.bytes, 0);
    console.log(`# backup under writes: ${took} s in all (cassandra1 ${byName.cassandra1.durationSeconds} s); ${(rawBytes / 1048576).toFixed(1)} MiB of SSTables stored as ${(stored / 1048576).toFixed(1)} MiB; ${writtenAfter - writtenBefore} rows written meanwhile`);
    const timing = /snapshot ([\d.]+ s), capture ([\d.]+ s)/.exec(backup.stderr);
    if (timing) console.log(`# snapshot ${timing[1]}, capture ${timing[2]}`);

    assert.deepEqual(await composureSnapshots(node1), [], "no snapshot left on cassandra1");
    assert.deepEqual(await composureSnapshots(node2), [], "no snapshot left on cassandra2");
    assert.equal(await leftovers(), "");
    assert.equal(await helpersLeft(), "");
    const verify = await composure("verify", { ...env, RUN: runId });
    assert.equal(verify.code, 0, verify.stderr);
    const list = await composure("list", env);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, new RegExp(`${runId} .* success .*cassandra1,cassandra2,files`), "both member services are listed as backed up");
  });

  test("after a dropped and a truncated table, a restore brings back every row of the backup", async () => {
    quiescentSums = await checksums();
    let started = performance.now();
    const backup = await composure("backup", env);
    assert.equal(backup.code, 0, backup.stderr);
    console.log(`# backup with writes stopped: ${seconds(started)} s`);
    const runId = runIds().at(-1)!;
    await cql(node1, "DROP TABLE ledger.tags;\nTRUNCATE shop.items;\nINSERT INTO shop.orders (region, id, customer, amount) VALUES (1, 100000, 'late', 1);\n");
    const damaged = await checksums();
    assert.equal(damaged["ledger.tags"], "missing");
    assert.match(damaged["shop.items"], /^0 /);
    assert.notEqual(damaged["shop.orders"], quiescentSums["shop.orders"]);

    const dry = await composure("restore", { ...env, RUN: runId, DRY_RUN: "1" });
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /cassandra1: would restore cassandra cluster ring from cassandra1\/ \(schema\.cql and 2 node archives\): 4 table\(s\) of ledger, shop/);
    assert.match(dry.stdout, /cassandra2: would be restored with cassandra1/);

    const startedAt = [await project.startedAt("cassandra1"), await project.startedAt("cassandra2")];
    started = performance.now();
    // The member service alone: it finds the cluster's backup in cassandra1's record and restores every node.
    const restore = await composure("restore", { ...env, RUN: runId, SERVICE: "cassandra2", FORCE: "1" });
    const took = seconds(started);
    assert.equal(restore.code, 0, restore.stderr);
    console.log(`# restore of ${loadedRows}+ rows on 2 nodes (with a rescue snapshot first): ${took} s`);
    const phases = [...restore.stderr.matchAll(/cassandra2: ((?:staged|kept|schema|truncated|imported|counted)[^\n]* in [\d.]+ s)$/gm)].map((match) => match[1]);
    if (phases.length) console.log(`# restore phases: ${phases.join("; ")}`);
    assert.match(restore.stderr, /recreated table ledger\.tags from schema\.cql/);
    assert.match(restore.stderr, /cassandra1-1: imported 4 table\(s\)/);
    assert.match(restore.stderr, /cassandra2-1: imported 4 table\(s\)/);
    assert.match(restore.stderr, /as recorded at backup time/);
    assert.match(restore.stderr, /cassandra2: captured with cassandra1: the whole cluster is restored/);
    assert.match(restore.stderr, /rescue copy of the replaced data: run \S+-rescue/);
    assert.deepEqual(await checksums(), quiescentSums, "every row and the checksums equal the state backed up");
    assert.deepEqual([await project.startedAt("cassandra1"), await project.startedAt("cassandra2")], startedAt, "a restore restarts no node");
    assert.deepEqual(await composureSnapshots(node1), [], "the rescue snapshot is cleared");
    assert.deepEqual(await composureSnapshots(node2), []);
    assert.equal(await leftovers(), "", "the staging directories are removed");
    assert.equal(await helpersLeft(), "");
  });

  test("repository engine: a second backup after 5% more rows adds at most 15% of the first; the restore brings back every row", async () => {
    const repositoryEnv = { ...env, DESTINATION: tempDir("cassandra-repository"), STORAGE: "repository" };
    const repositoryRuns = backupsOf(path.join(repositoryEnv.DESTINATION, project.name), "plain");
    const addedBy = (run: string) =>
      repositoryRuns.manifestOf(run).services.flatMap((record: { artifacts: { repository?: { addedBytes: number } }[] }) => record.artifacts).reduce((sum: number, artifact: { repository?: { addedBytes: number } }) => sum + (artifact.repository?.addedBytes ?? 0), 0);
    const first = await composure("backup", repositoryEnv);
    assert.equal(first.code, 0, first.stderr);
    const firstAdded = addedBy(repositoryRuns.runIds().at(-1)!);
    // 11,100 more journal rows: 5% of the 222,000 loaded (a dataset big enough that the new
    // SSTables' own files and restic's tree blobs are not most of what a second backup adds)
    await sh("docker", ["exec", "-i", node1, "python3", "-"], 'with open("/tmp/more.csv", "w") as f:\n    for day in range(600, 711):\n        for seq in range(100): f.write("%d,%d,%d,entry %d of day %d\\n" % (day, seq, 1700000000000 + day * 86400000 + seq, seq, day))\n');
    await sh("docker", ["exec", "-i", node1, "sh", "-c", "cqlsh --request-timeout=120 > /tmp/more.log 2>&1; true"], "CONSISTENCY ALL;\nCOPY ledger.journal (day, seq, at, body) FROM '/tmp/more.csv' WITH MAXATTEMPTS = 20;\n");
    const grown = await checksums();
    assert.match(grown["ledger.journal"], /^71100 /, "the new rows are in");
    const second = await composure("backup", repositoryEnv);
    assert.equal(second.code, 0, second.stderr);
    const secondRun = repositoryRuns.runIds().at(-1)!;
    const secondAdded = addedBy(secondRun);
    console.log(`# repository engine, 2-node ring: first backup added ${firstAdded} bytes, the second (5% more rows) ${secondAdded} (${((secondAdded / firstAdded) * 100).toFixed(1)}%)`);
    assert.ok(secondAdded <= firstAdded * 0.15, `the second backup added ${secondAdded} bytes, more than 15% of ${firstAdded}`);
    // The snapshot keeps its paths from run to run: SSTables unchanged since the first backup are not read again.
    const unchanged = [...second.stderr.matchAll(/: snapshot composure-\S+: (\d+) files \((\d+) unchanged, not read again\)/g)].map((match) => Number(match[2]));
    assert.equal(unchanged.length, 2, "one line per node");
    assert.ok(unchanged.every((count) => count > 0), `unchanged SSTables were not read again: ${unchanged.join(", ")}`);
    await cql(node1, "TRUNCATE ledger.journal;\nDROP TABLE shop.items;\n");
    const restore = await composure("restore", { ...repositoryEnv, RUN: secondRun, FORCE: "1", NO_RESCUE: "1" });
    assert.equal(restore.code, 0, restore.stderr);
    assert.deepEqual(await checksums(), grown, "every row back, the new ones too");
  });

  test("a keyspace filter that matches nothing, or a node without nodetool, fails clearly and leaves nothing behind", async () => {
    const config = path.join(tempDir("cassandra-config"), "composure.yml");
    writeFileSync(config, "services:\n  cassandra1:\n    options: { keyspaces: [nosuch*] }\n  files:\n    strategy: cassandra\n");
    const before = runIds();
    const backup = await composure("backup", { ...env, CONFIG: config });
    assert.equal(backup.code, 1, backup.stderr);
    const runId = runIds().find((id) => !before.includes(id))!;
    const byName = Object.fromEntries(manifestOf(runId).services.map((service: { name: string }) => [service.name, service]));
    assert.equal(byName.cassandra1.status, "failed");
    assert.match(byName.cassandra1.error, /prepare of service cassandra1 failed: keyspace filter "nosuch\*" \(composure\.cassandra\.keyspaces\) matches no keyspace; keyspaces in the cluster: ledger, shop/);
    assert.equal(byName.cassandra2.status, "failed");
    assert.match(byName.cassandra2.error, /not backed up: it is part of cassandra cluster ring, whose backup by service cassandra1 failed/);
    assert.equal(byName.files.status, "failed");
    assert.match(byName.files.error, /nodetool is not in the image .*busybox.*node files-1.*\(the cassandra strategy runs nodetool and cqlsh inside every node's container/);
    assert.match(backup.stderr, /node files-1 \(container [^)]*\): nodetool tablestats instead of composure's JMX client \(the image has no sh, or no java on its PATH\)/, "the JMX client falls back to nodetool, and says why");
    assert.ok(!existsSync(path.join(destination, project.name, runId, "cassandra1")), "no artifact directory is left");
    assert.deepEqual(await composureSnapshots(node1), []);
    assert.deepEqual(await composureSnapshots(node2), []);
    assert.equal(await leftovers(), "");
    assert.equal(await helpersLeft(), "");
  });

  test("with a node down the error names the node, the run is partial and the other node keeps no snapshot", async () => {
    await project.compose("stop", "cassandra2");
    const started = performance.now();
    const backup = await composure("backup", env);
    console.log(`# backup with a node down: ${seconds(started)} s`);
    assert.equal(backup.code, 1, backup.stderr);
    const runId = runIds().at(-1)!;
    assert.ok(existsSync(path.join(destination, project.name, runId, "manifest.json")), `run ${runId} has no manifest: ${backup.stderr}`);
    const manifest = manifestOf(runId);
    assert.equal(manifest.outcome, "partial");
    const byName = Object.fromEntries(manifest.services.map((service: { name: string }) => [service.name, service]));
    assert.equal(byName.files.status, "ok", "the other services are backed up");
    assert.equal(byName.cassandra1.status, "failed");
    assert.match(byName.cassandra1.error, /node cassandra2-1 \(container \S*cassandra2\S*\) is down: its container is not running/);
    assert.match(byName.cassandra2.error, /whose backup by service cassandra1 failed: node cassandra2-1 .* is down/);
    assert.match(backup.stderr, /cassandra1: backup failed: .*node cassandra2-1/);
    assert.deepEqual(await composureSnapshots(node1), [], "the running node keeps no snapshot");
    assert.equal(await leftovers(), "");
    assert.equal(await helpersLeft(), "");
  });
});

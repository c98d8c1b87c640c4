// Disaster recovery of a stack shaped like the reference: a two-node Cassandra ring with no
// composure labels (an RF 1 and an RF 2 keyspace), a two-node OpenSearch cluster sharing its
// snapshot volume, MariaDB, a volume app that depends on it, SQLite, Prometheus and a plain volume.
// The README's runbook end to end: backup to a WebDAV remote, every container, volume and local
// backup removed, the stack started empty (a fresh ring draws new tokens), `make restore
// FROM=remote FORCE=1`, then every row, document, table and file is back and `make verify DEEP=1`
// passes. Then the ring's backup is restored onto a ring of three nodes.
import assert from "node:assert/strict";
import { rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { cassandraNode, cassandraTurn, cql, tableChecksums, waitForRing } from "../support/cassandra.ts";
import { backupsOf, ComposeProject, composure, docker, eventually, fixtureImage, inVolumes, requireDocker, sh, snapshotVolume, tempDir } from "../support/composure.ts";
import { bulk, bulkBody, contentHash, esOk, waitForHealth } from "../support/opensearch.ts";
import { RcloneServer } from "../support/remotes.ts";

const ringNode = (name: string, extra = "") => cassandraNode(name, { cluster: "reference", seed: "cassandra-node1", heap: "512M", extra });

/**
 * Nodes after the seed join without bootstrapping (a fresh ring has no data to stream), one at a
 * time once the node before answers (two joining at once on 2 cores can miss each other's gossip).
 */
const joiningNode = (name: string, after: string) =>
  ringNode(
    name,
    `
      CASSANDRA_AUTO_BOOTSTRAP: "false"
    depends_on:
      ${after}: { condition: service_healthy }`,
  );

const searchNode = (name: string) => `
  ${name}:
    image: ${fixtureImage("opensearch")}
    hostname: ${name}
    environment:
      - cluster.name=reference
      - node.name=${name}
      - discovery.seed_hosts=search1,search2
      - cluster.initial_cluster_manager_nodes=search1,search2
      - path.repo=/snapshots
      - bootstrap.memory_lock=false
      - OPENSEARCH_JAVA_OPTS=-Xms384m -Xmx384m
    volumes: ["${name}-data:/usr/share/opensearch/data", "snapshots:/snapshots"]`;

const stack = new ComposeProject(
  `cmpt-refdr${process.pid}`,
  `
services:${ringNode("cassandra-node1")}${joiningNode("cassandra-node2", "cassandra-node1")}${searchNode("search1")}${searchNode("search2")}
  db:
    image: ${fixtureImage("mariadb")}
    command: ["mariadbd", "--innodb-buffer-pool-size=32M"]
    environment: { MARIADB_ROOT_PASSWORD: "reference-root", MARIADB_DATABASE: shop, MARIADB_INITDB_SKIP_TZINFO: "1" }
    volumes: ["dbdata:/var/lib/mysql"]
  app:
    image: $BUSYBOX
    init: true
    command: ["sleep", "100000"]
    depends_on: [db]
    volumes: ["appdata:/data"]
  notes:
    image: $BUSYBOX
    init: true
    command: ["sleep", "100000"]
    volumes: ["notes:/srv"]
    labels:
      composure.strategy: sqlite
      composure.sqlite.paths: /srv/notes.db
      composure.sqlite.image: ${fixtureImage("sqlite")}
  prom:
    image: ${fixtureImage("prometheus")}
    command: ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus", "--web.enable-admin-api"]
    volumes: ["tsdb:/prometheus"]
  files:
    image: $BUSYBOX
    init: true
    command: ["sleep", "100000"]
    volumes: ["uploads:/uploads"]
volumes: { cassandra-node1-data: {}, cassandra-node2-data: {}, search1-data: {}, search2-data: {}, snapshots: {}, dbdata: {}, appdata: {}, notes: {}, tsdb: {}, uploads: {} }
`,
);

/** Three nodes for the same ring's backup: another node count, other tokens. */
const threeNodes = new ComposeProject(
  `cmpt-ref3n${process.pid}`,
  `
services:${ringNode("cassandra-node1")}${joiningNode("cassandra-node2", "cassandra-node1")}${joiningNode("cassandra-node3", "cassandra-node2")}
volumes: { cassandra-node1-data: {}, cassandra-node2-data: {}, cassandra-node3-data: {} }
`,
);

const server = new RcloneServer("webdav", "refsite");
const destination = tempDir("refdr-dest");
const config = path.join(tempDir("refdr-config"), "composure.yml");
writeFileSync(config, 'remote:\n  target: "refsite:offsite"\n');
const env = () => ({ PROJECT: stack.name, DESTINATION: destination, CONFIG: config, ...server.clientEnv() });

const ringTables = ["metrics.events", "shop.orders"];
const ringSchema = `
CREATE KEYSPACE IF NOT EXISTS metrics WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1};
CREATE KEYSPACE IF NOT EXISTS shop WITH replication = {'class': 'NetworkTopologyStrategy', 'datacenter1': 2};
CREATE TABLE IF NOT EXISTS metrics.events (id int PRIMARY KEY, body text);
CREATE TABLE IF NOT EXISTS shop.orders (region int, id int, note text, PRIMARY KEY (region, id));
`;
/** 3,000 events (each on one node only: RF 1) and 1,500 orders (on both nodes), in batches of 50 rows. */
function ringRows(): string {
  const batches: string[] = ["CONSISTENCY ALL;"];
  for (let batch = 0; batch < 60; batch++) {
    const rows = Array.from({ length: 50 }, (_, i) => `INSERT INTO metrics.events (id, body) VALUES (${batch * 50 + i}, 'event ${batch * 50 + i}');`);
    batches.push(`BEGIN UNLOGGED BATCH\n${rows.join("\n")}\nAPPLY BATCH;`);
  }
  for (let region = 0; region < 30; region++) {
    const rows = Array.from({ length: 50 }, (_, i) => `INSERT INTO shop.orders (region, id, note) VALUES (${region}, ${i}, 'order ${region}-${i}');`);
    batches.push(`BEGIN UNLOGGED BATCH\n${rows.join("\n")}\nAPPLY BATCH;`);
  }
  return `${batches.join("\n")}\n`;
}

const ids = new Map<string, string>();
async function idOf(project: ComposeProject, service: string): Promise<string> {
  const key = `${project.name}/${service}`;
  if (!ids.has(key)) ids.set(key, await project.containerId(service));
  return ids.get(key)!;
}
const mariadb = async (sql: string) => (await docker("exec", await idOf(stack, "db"), "sh", "-c", 'MYSQL_PWD="$MARIADB_ROOT_PASSWORD" mariadb -uroot -N -B -e "$1"', "sh", sql)).trim();
const sqlite = (sql: string) => sh("docker", ["run", "--rm", "--log-driver", "none", "-v", `${stack.volume("notes")}:/srv`, fixtureImage("sqlite"), "sqlite3", "-batch", "/srv/notes.db", sql]);
const promQuery = async (query: string, time: number) =>
  JSON.parse(await docker("exec", await idOf(stack, "prom"), "sh", "-c", 'curl -s "http://localhost:9090/api/v1/query?query=$1&time=$2"', "sh", query, String(time))).data.result as unknown[];

/** Everything the restore must bring back, read the same way before and after. */
async function stackState(): Promise<Record<string, string>> {
  const search1 = await idOf(stack, "search1");
  return {
    ...(await tableChecksums(await idOf(stack, "cassandra-node1"), ringTables)),
    tickets: await contentHash(search1, "tickets"),
    mariadb: await mariadb("SELECT count(*), SUM(CRC32(CONCAT_WS(',', id, note))) FROM shop.orders"),
    sqlite: await sqlite("SELECT count(*), sum(length(body)), max(id) FROM notes"),
    appdata: await snapshotVolume(stack.volume("appdata")),
    uploads: await snapshotVolume(stack.volume("uploads")),
  };
}

async function whenStackAnswers(): Promise<void> {
  await waitForRing(await idOf(stack, "cassandra-node1"), 2);
  await waitForHealth(await idOf(stack, "search1"), 2);
  await eventually("mariadb", () => mariadb("SELECT 1"), 180);
  await eventually("prometheus", async () => assert.ok(await promQuery("up", Math.floor(Date.now() / 1000))), 180);
}

const { runIds, manifestOf } = backupsOf(path.join(destination, stack.name), "plain");

describe("disaster recovery of a reference-shaped stack", { timeout: 2_400_000 }, () => {
  let before_: Record<string, string>;
  let backupOutput = "";
  let backupAt = 0;
  let releaseTurn = () => undefined as void;

  before(async () => {
    await requireDocker();
    releaseTurn = await cassandraTurn();
    await server.start();
    await stack.up();
    await whenStackAnswers();
    const node1 = await idOf(stack, "cassandra-node1");
    await cql(node1, ringSchema);
    await eventually("the ring's rows", () => cql(node1, ringRows()), 120, 3000);
    const search1 = await idOf(stack, "search1");
    await esOk(search1, "PUT", "/tickets", JSON.stringify({ settings: { number_of_shards: 2, number_of_replicas: 1 } }));
    await bulk(search1, bulkBody("tickets", 1, 1500));
    await esOk(search1, "POST", "/_refresh");
    await mariadb("USE shop; CREATE TABLE shop.orders (id INT PRIMARY KEY, note VARCHAR(64)); INSERT INTO shop.orders SELECT seq, CONCAT('order ', seq) FROM seq_1_to_800;");
    await sqlite("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT); WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 700) INSERT INTO notes SELECT i, 'note ' || i FROM s;");
    await inVolumes([`${stack.volume("appdata")}:/data`, `${stack.volume("uploads")}:/uploads`], "mkdir -p /data/conf /uploads/2026 && echo 'db=shop' > /data/conf/app.ini && seq 1 5000 > /uploads/2026/numbers.txt && ln -s numbers.txt /uploads/2026/latest");
    before_ = await stackState();
    assert.match(before_["metrics.events"], /^3000 /, "the RF 1 keyspace holds every event");
    assert.match(before_["shop.orders"], /^1500 /, "the RF 2 keyspace holds every order");
    backupAt = Math.floor(Date.now() / 1000);
    const backup = await composure("backup", env());
    backupOutput = `${backup.stdout}\n${backup.stderr}`;
    assert.equal(backup.code, 0, backup.stderr);
  });

  after(async () => {
    await stack.down().catch(() => undefined);
    await threeNodes.down().catch(() => undefined);
    await server.stop();
    releaseTurn();
  });

  test("the ring is found without labels: one snapshot moment and one tag, both services recorded as members of one cluster", () => {
    const snapshots = backupOutput.split("\n").filter((line) => /cassandra cluster .*: snapshot composure-\S+ of .* on \d+ node\(s\)/.test(line));
    assert.equal(snapshots.length, 1, `one snapshot for the ring:\n${snapshots.join("\n")}`);
    assert.match(snapshots[0], /on 2 node\(s\)/);
    const manifest = manifestOf(runIds().at(-1)!);
    const record = (name: string) => manifest.services.find((service: { name: string }) => service.name === name);
    const [node1, node2] = [record("cassandra-node1"), record("cassandra-node2")];
    assert.deepEqual(node1.facts.services, ["cassandra-node1", "cassandra-node2"]);
    assert.equal(node1.facts.foundBy, "ring");
    assert.equal(node1.facts.capturedWith, "cassandra-node1");
    assert.equal(node2.facts.capturedWith, "cassandra-node1");
    assert.equal(node2.facts.cassandraCluster, node1.facts.cassandraCluster);
    assert.deepEqual(node1.artifacts.map((artifact: { path: string }) => path.basename(artifact.path)).sort(), ["cassandra-node1-1.tar.zst", "cassandra-node2-1.tar.zst", "schema.cql.zst"]);
    assert.equal(record("search2").facts.capturedWith, "search1", "the OpenSearch member says who captured its cluster");
    assert.equal(record("search1").facts.capturedWith, "search1");
  });

  test("host lost: restore FROM=remote brings every row, document, table and file back, and the restore drill passes", async () => {
    await stack.down();
    ids.clear();
    rmSync(destination, { recursive: true, force: true });
    await stack.up();
    await whenStackAnswers();
    const restore = await composure("restore", { ...env(), FROM: "remote", FORCE: "1" });
    const output = `${restore.stdout}\n${restore.stderr}`;
    assert.equal(restore.code, 0, output);
    assert.match(output, /loading with sstableloader: .*other tokens than at backup time/, "a fresh ring draws new tokens: the bulk loader streams the rows to their owners");
    assert.deepEqual(await stackState(), before_);
    assert.ok((await promQuery("up", backupAt - 2)).length > 0, "Prometheus answers for a time before the disaster");
    const leftovers = await inVolumes([`${stack.volume("cassandra-node1-data")}:/v1:ro`, `${stack.volume("cassandra-node2-data")}:/v2:ro`], "find /v1 /v2 \\( -path '*/snapshots/composure-*' -o -name composure-restore \\) -prune -print");
    assert.equal(leftovers.trim(), "", "no snapshot or staging directory of composure is left on the nodes");
    const verify = await composure("verify", { ...env(), DEEP: "1" });
    assert.equal(verify.code, 0, `${verify.stdout}\n${verify.stderr}`);
  });

  test("the ring's backup restored onto a ring of three nodes brings every row back", async () => {
    await stack.down(); // room for three more nodes on this machine
    await threeNodes.up();
    const node1 = await idOf(threeNodes, "cassandra-node1");
    await waitForRing(node1, 3);
    const restore = await composure("restore", { ...env(), INTO: threeNodes.name, SERVICE: "cassandra-node1", FORCE: "1" });
    const output = `${restore.stdout}\n${restore.stderr}`;
    assert.equal(restore.code, 0, output);
    assert.match(output, /loading with sstableloader: the ring has other nodes than at backup time \(cassandra-node3-1 new\)/);
    const restored = await tableChecksums(node1, ringTables);
    for (const table of ringTables) assert.equal(restored[table], before_[table], `${table} on three nodes`);
  });
});

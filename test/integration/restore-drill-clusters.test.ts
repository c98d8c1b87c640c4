// Restore drills of the JVM engines (a file of its own: they take minutes and run beside the
// other suites): a Cassandra node and an OpenSearch node are backed up hot, then drilled into
// scratch copies that start from empty volumes, are restored by their strategies and answer with
// the row and document counts recorded at backup time; production is not restarted.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { ComposeProject, composure, docker, eventually, fixtureImage, requireDocker, sh, takeTurn, tempDir, whenNoneRuns } from "../support/composure.ts";

const cassandraImage = fixtureImage("cassandra");
const opensearchImage = fixtureImage("opensearch");

const project = new ComposeProject(
  `cmpt-drillc${process.pid}`,
  `
version: "3.8"
services:
  cass:
    image: ${cassandraImage}
    hostname: cass
    stop_grace_period: 30s
    environment: { CASSANDRA_CLUSTER_NAME: drill, CASSANDRA_SEEDS: cass, CASSANDRA_NUM_TOKENS: "16", MAX_HEAP_SIZE: 512M, HEAP_NEWSIZE: 128M }
    volumes: ["cassdata:/var/lib/cassandra"]
  search:
    image: ${opensearchImage}
    environment:
      - cluster.name=drill
      - node.name=search
      - discovery.type=single-node
      - path.repo=/snapshots
      - bootstrap.memory_lock=false
      - OPENSEARCH_JAVA_OPTS=-Xms384m -Xmx384m
    volumes: ["searchdata:/usr/share/opensearch/data", "snapshots:/snapshots"]
volumes: { cassdata: {}, searchdata: {}, snapshots: {} }
`,
);
const destination = tempDir("drill-clusters-dest");
const env = { PROJECT: project.name, DESTINATION: destination };

const startedAt = async (service: string) => docker("inspect", "-f", "{{.State.StartedAt}}", await project.containerId(service));

describe("restore drills of a Cassandra node and an OpenSearch node", { timeout: 1_200_000 }, () => {
  let releaseTurn = () => undefined as void;
  before(async () => {
    await requireDocker();
    releaseTurn = await takeTurn("cassandra"); // one Cassandra test at a time on this machine
    await whenNoneRuns(cassandraImage);
    await project.up();
    const cass = await project.containerId("cass");
    const search = await project.containerId("search");
    // 2,000 rows in batches of 50 (Cassandra refuses large batches).
    const rows = Array.from({ length: 40 }, (_, batch) => `BEGIN UNLOGGED BATCH\n${Array.from({ length: 50 }, (_, i) => `INSERT INTO shop.orders (id, note) VALUES (${batch * 50 + i}, 'order ${batch * 50 + i}');`).join("\n")}\nAPPLY BATCH;`).join("\n");
    await eventually("cassandra", () => sh("docker", ["exec", "-i", cass, "cqlsh", "--request-timeout=60"], `CREATE KEYSPACE IF NOT EXISTS shop WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1};\nCREATE TABLE IF NOT EXISTS shop.orders (id int PRIMARY KEY, note text);\n${rows}\n`), 300);
    const documents = Array.from({ length: 700 }, (_, i) => `${JSON.stringify({ index: { _index: "events", _id: String(i) } })}\n${JSON.stringify({ n: i, note: `event ${i}` })}`).join("\n");
    await eventually("opensearch", () => sh("docker", ["exec", "-i", search, "curl", "-sf", "-H", "Content-Type: application/x-ndjson", "-X", "POST", "http://localhost:9200/_bulk?refresh=true", "--data-binary", "@-"], `${documents}\n`), 300);
    const backup = await composure("backup", env);
    assert.equal(backup.code, 0, backup.stderr);
  });
  after(async () => {
    await project.down().catch(() => undefined);
    releaseTurn();
  });

  test("both copies restore and answer with the recorded counts; production keeps running", async () => {
    const before = { cass: await startedAt("cass"), search: await startedAt("search") };
    const drill = await composure("verify", { ...env, DEEP: "1" }, ["--json"]);
    assert.equal(drill.code, 0, drill.stderr);
    const results = JSON.parse(drill.stdout).drill.results as { service: string; strategy: string; ok: boolean; totalSeconds: number }[];
    assert.deepEqual(results.map((result) => `${result.service}:${result.strategy}:${result.ok}`).sort(), ["cass:cassandra:true", "search:elasticsearch:true"]);
    console.log(`# drill: ${results.map((result) => `${result.service} ${result.totalSeconds.toFixed(1)} s`).join(", ")}`);
    assert.deepEqual({ cass: await startedAt("cass"), search: await startedAt("search") }, before, "production was not restarted");
    assert.equal((await docker("ps", "-aq", "--filter", `label=composure.drill.source=${project.name}`)).trim(), "");
    assert.equal((await docker("volume", "ls", "-q", "--filter", `label=composure.drill.source=${project.name}`)).trim(), "");
  });

  test("on the repository engine (STORAGE=repository) both copies restore from restic snapshots and answer with the recorded counts", async () => {
    const repositoryEnv = { ...env, DESTINATION: tempDir("drill-clusters-repository"), STORAGE: "repository" };
    const backup = await composure("backup", repositoryEnv);
    assert.equal(backup.code, 0, backup.stderr);
    assert.match(backup.stderr, /added to the repository/);
    const drill = await composure("verify", { ...repositoryEnv, DEEP: "1" }, ["--json"]);
    assert.equal(drill.code, 0, drill.stderr);
    const results = JSON.parse(drill.stdout).drill.results as { service: string; strategy: string; ok: boolean; message: string }[];
    assert.deepEqual(results.map((result) => `${result.service}:${result.strategy}:${result.ok}`).sort(), ["cass:cassandra:true", "search:elasticsearch:true"], JSON.stringify(results));
  });
});

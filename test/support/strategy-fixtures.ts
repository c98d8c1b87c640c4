// The small fixture of each strategy for the strategy conformance suite
// (test/integration/strategy-conformance.suite.ts): a Compose service, its seed, a writer that
// keeps changing it during a hot backup, a damage, a checksum of the seeded data, and the
// secrets it is given. A new strategy joins the suite by adding its fixture here; the suite
// checks the same contract for every entry.
import { $ } from "zx";
import { tableChecksums, cql } from "./cassandra.ts";
import { ComposeProject, docker, eventually, fixtureImage, inVolumes, sh, snapshotVolume } from "./composure.ts";
import { bulk, bulkBody, contentHash, esOk, waitForHealth } from "./opensearch.ts";
import { Writer } from "./writers.ts";

/** The running stack a fixture works on: its project and its containers. */
export interface Stack {
  project: ComposeProject;
  /** The container of a service (asked once; ids survive restarts). */
  container(service: string): Promise<string>;
}

export interface StrategyFixture {
  /** The strategy as the manifest records it. */
  strategy: string;
  /** Its Compose service. */
  service: string;
  /** The service's YAML under `services:` (indented two spaces), and the named volumes it declares. */
  compose: string;
  volumes: string[];
  /** Passwords it is given: never in argv, logs, manifests or metrics. */
  secrets: string[];
  /** Why its sources stay archive files when the repository engine is chosen (absent: they go into the repository). */
  archiveOnly?: string;
  /** Volumes of production a restore drill must leave byte for byte as they are (a snapshot repository the drill reads). */
  untouchedByDrills?: string[];
  /** Captured while it runs (hot); otherwise it is stopped for its capture. */
  hot: boolean;
  /** Without its running container the backup cannot capture it: that service fails, alone. */
  needsRunning: boolean;
  /** Waits until the service answers (after start, restart or restore). */
  ready(stack: Stack): Promise<void>;
  /** Writes the data the checksum covers, once the service answers. */
  seed(stack: Stack): Promise<void>;
  /** Starts writes that go on during a backup; returns how to stop them (absent: the service writes by itself, or is stopped anyway). */
  write?(stack: Stack): Promise<() => Promise<void>>;
  /** Destroys or changes the seeded data. */
  damage(stack: Stack): Promise<void>;
  /** A digest of the seeded data: equal before the damage and after the restore. */
  checksum(stack: Stack): Promise<string>;
}

const inContainer = async (stack: Stack, service: string, script: string) => docker("exec", await stack.container(service), "sh", "-c", script);
const writerIn = async (stack: Stack, service: string, script: string) => {
  const writer = new Writer(await stack.container(service), script);
  return () => writer.stop();
};
/** Empties a volume with its service stopped, then starts the service on the empty volume. */
async function wipe(stack: Stack, service: string, volume: string): Promise<void> {
  const id = await stack.container(service);
  await docker("stop", id);
  await inVolumes([`${stack.project.volume(volume)}:/v`], "rm -rf /v/* /v/.[!.]*; true");
  await docker("start", id);
}

// Synthetic samples from 5 h to 1 h ago (older than the TSDB head, so they sit in blocks).
const now = Math.floor(Date.now() / 1000);
const first = now - 5 * 3600;
const last = now - 3600;

const volume: StrategyFixture = {
  strategy: "volume",
  service: "files",
  compose: `
  files:
    image: $BUSYBOX
    init: true
    command: ["sleep", "100000"]
    volumes: ["files:/data"]`,
  volumes: ["files"],
  secrets: [],
  hot: false,
  needsRunning: false,
  ready: async () => undefined,
  seed: (stack) => inVolumes([`${stack.project.volume("files")}:/data`], "mkdir -p /data/docs && for i in $(seq 1 200); do echo doc $i > /data/docs/d$i.txt; done; dd if=/dev/urandom of=/data/blob bs=1M count=2 2>/dev/null; ln -s docs/d1.txt /data/link").then(() => undefined),
  damage: (stack) => inVolumes([`${stack.project.volume("files")}:/data`], "rm -rf /data/docs; echo changed > /data/blob").then(() => undefined),
  checksum: (stack) => snapshotVolume(stack.project.volume("files")),
};

const psql = (stack: Stack, sql: string) => inContainer(stack, "pg", `psql -X -A -t -v ON_ERROR_STOP=1 -U postgres -d shop -c "${sql}"`);
const postgres: StrategyFixture = {
  strategy: "postgres",
  service: "pg",
  compose: `
  pg:
    image: ${fixtureImage("postgres")}
    environment: { POSTGRES_PASSWORD: "conformance-pg-secret-7f3a", POSTGRES_DB: shop }
    volumes: ["pgdata:/var/lib/postgresql/data"]`,
  volumes: ["pgdata"],
  secrets: ["conformance-pg-secret-7f3a"],
  hot: true,
  needsRunning: true,
  ready: (stack) => eventually("postgres", () => psql(stack, "SELECT 1")).then(() => undefined),
  seed: (stack) =>
    psql(stack, "CREATE TABLE orders (id int PRIMARY KEY, note text); INSERT INTO orders SELECT g, 'order ' || g FROM generate_series(1, 20000) g; CREATE TABLE ticks (id serial PRIMARY KEY, at timestamptz DEFAULT now());").then(() => undefined),
  write: (stack) => writerIn(stack, "pg", `while [ ! -e /tmp/stop-writer ]; do echo "INSERT INTO ticks DEFAULT VALUES;"; sleep 0.02; done | psql -X -q -v ON_ERROR_STOP=1 -U postgres -d shop`),
  damage: (stack) => psql(stack, "DROP TABLE orders").then(() => undefined),
  checksum: (stack) => psql(stack, "SELECT count(*) || ' ' || md5(string_agg(id || ':' || note, ',' ORDER BY id)) FROM orders"),
};

const mariadbClient = (stack: Stack, sql: string) => inContainer(stack, "maria", `MYSQL_PWD="$MARIADB_ROOT_PASSWORD" mariadb -uroot -N -B ledger -e "${sql}"`);
const mariadb: StrategyFixture = {
  strategy: "mariadb",
  service: "maria",
  compose: `
  maria:
    image: ${fixtureImage("mariadb")}
    command: ["mariadbd", "--innodb-buffer-pool-size=32M"]
    environment: { MARIADB_ROOT_PASSWORD: "conformance-md-secret-91c2", MARIADB_DATABASE: ledger, MARIADB_INITDB_SKIP_TZINFO: "1" }
    volumes: ["mysql:/var/lib/mysql"]`,
  volumes: ["mysql"],
  secrets: ["conformance-md-secret-91c2"],
  hot: true,
  needsRunning: true,
  ready: (stack) => eventually("mariadb", () => mariadbClient(stack, "SELECT 1")).then(() => undefined),
  seed: (stack) =>
    mariadbClient(stack, "CREATE TABLE entries (id INT PRIMARY KEY, amount INT) ENGINE=InnoDB; INSERT INTO entries SELECT seq, seq * 3 FROM seq_1_to_5000; CREATE TABLE ticks (id INT AUTO_INCREMENT PRIMARY KEY, at TIMESTAMP DEFAULT CURRENT_TIMESTAMP) ENGINE=InnoDB;").then(() => undefined),
  write: (stack) => writerIn(stack, "maria", `while [ ! -e /tmp/stop-writer ]; do echo "INSERT INTO ticks () VALUES ();"; sleep 0.02; done | MYSQL_PWD="$MARIADB_ROOT_PASSWORD" mariadb -uroot ledger`),
  damage: (stack) => mariadbClient(stack, "DROP TABLE entries").then(() => undefined),
  checksum: (stack) => mariadbClient(stack, "SET SESSION group_concat_max_len = 16777216; SELECT COUNT(*), MD5(GROUP_CONCAT(id, ':', amount ORDER BY id)) FROM entries"),
};

const sqlite3 = (stack: Stack, sql: string) => inContainer(stack, "lite", `sqlite3 -batch -cmd ".timeout 20000" /data/app.db "${sql}"`);
const sqlite: StrategyFixture = {
  strategy: "sqlite",
  service: "lite",
  // The fixture app keeps its own database (app-ticks.db, not backed up); the writer below holds
  // a second connection on the backed-up one, in WAL mode like the app's.
  compose: `
  lite:
    image: ${fixtureImage("sqlite")}
    environment: { APP_DB: /data/app-ticks.db, APP_INTERVAL: "0.5" }
    volumes: ["litedata:/data"]
    labels: { composure.strategy: sqlite, composure.sqlite.paths: /data/app.db }`,
  volumes: ["litedata"],
  secrets: [],
  hot: true,
  // Stopped, its files are at rest: a helper with sqlite3 copies them just as well.
  needsRunning: false,
  ready: (stack) => eventually("sqlite", () => inContainer(stack, "lite", "test -s /data/app-ticks.db")).then(() => undefined),
  seed: (stack) =>
    sqlite3(stack, "PRAGMA journal_mode = WAL; CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT); CREATE TABLE ticks (id INTEGER PRIMARY KEY, at TEXT); WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000) INSERT INTO items SELECT i, 'item ' || i FROM n;").then(() => undefined),
  write: (stack) => writerIn(stack, "lite", `while [ ! -e /tmp/stop-writer ]; do echo "INSERT INTO ticks (at) VALUES (datetime('now'));"; sleep 0.02; done | sqlite3 -batch -cmd ".timeout 20000" /data/app.db > /dev/null`),
  damage: (stack) => sqlite3(stack, "DELETE FROM items WHERE id % 3 = 0; UPDATE items SET name = 'changed'").then(() => undefined),
  checksum: (stack) => inContainer(stack, "lite", `sqlite3 -batch -cmd ".timeout 20000" /data/app.db "SELECT id, name FROM items ORDER BY id" | md5sum`),
};

const redisCli = (stack: Stack, script: string) => inContainer(stack, "cache", `export REDISCLI_AUTH="$REDIS_PASSWORD"; ${script}`);
const redis: StrategyFixture = {
  strategy: "redis",
  service: "cache",
  // The password reaches redis-server through a config file written from its environment (a
  // shell builtin), never through anyone's argv.
  compose: `
  cache:
    image: ${fixtureImage("redis")}
    command: ["sh", "-c", 'printf "requirepass %s\\n" "$$REDIS_PASSWORD" > /tmp/redis.conf && exec redis-server /tmp/redis.conf --appendonly yes']
    environment: { REDIS_PASSWORD: "conformance-redis-secret-5d0e" }
    volumes: ["cachedata:/data"]`,
  volumes: ["cachedata"],
  secrets: ["conformance-redis-secret-5d0e"],
  hot: true,
  needsRunning: true,
  ready: (stack) => eventually("redis", () => redisCli(stack, "redis-cli PING | grep -q PONG")).then(() => undefined),
  seed: (stack) => redisCli(stack, "for i in $(seq 1 500); do echo SET key:$i value-$i; done | redis-cli > /dev/null").then(() => undefined),
  write: (stack) => writerIn(stack, "cache", `export REDISCLI_AUTH="$REDIS_PASSWORD"; i=0; while [ ! -e /tmp/stop-writer ]; do i=$((i+1)); echo "SET tick:$i $i"; sleep 0.01; done | redis-cli > /dev/null`),
  damage: (stack) => redisCli(stack, "redis-cli DEL $(seq -f 'key:%g' 1 2 500) > /dev/null && redis-cli SET key:1 changed > /dev/null").then(() => undefined),
  checksum: (stack) => redisCli(stack, "redis-cli --scan --pattern 'key:*' | sort > /tmp/keys; echo $(wc -l < /tmp/keys) $(xargs redis-cli MGET < /tmp/keys | md5sum)"),
};

/** Raw samples of the synthetic series, one line per series, sorted (the query API of Prometheus). */
async function prometheusSamples(stack: Stack): Promise<string> {
  const query = encodeURIComponent("synthetic_series[6h]");
  const answer = JSON.parse(await inContainer(stack, "prom", `curl -sf 'http://localhost:9090/api/v1/query?query=${query}&time=${now}'`));
  if (answer.status !== "success") throw new Error(`prometheus query failed: ${JSON.stringify(answer)}`);
  return (answer.data.result as { metric: unknown; values: unknown }[]).map((entry) => `${JSON.stringify(entry.metric)} ${JSON.stringify(entry.values)}`).sort().join("\n");
}
const prometheus: StrategyFixture = {
  strategy: "prometheus",
  service: "prom",
  // It scrapes itself every 5 s: the writer of a hot snapshot.
  compose: `
  prom:
    image: ${fixtureImage("prometheus")}
    command: ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus", "--web.enable-admin-api"]
    labels: { composure.prometheus.query: synthetic_series }
    volumes: ["tsdb:/prometheus"]`,
  volumes: ["tsdb"],
  secrets: [],
  hot: true,
  needsRunning: true,
  ready: (stack) => eventually("prometheus", () => inContainer(stack, "prom", "curl -sf http://localhost:9090/-/ready")).then(() => undefined),
  async seed(stack) {
    const lines = ["# TYPE synthetic_series gauge"];
    for (const instance of ["a", "b"]) for (let time = first; time <= last; time += 60) lines.push(`synthetic_series{instance="${instance}"} ${(time / 60) % 97} ${time}`);
    lines.push("# EOF");
    const id = await stack.container("prom");
    await docker("stop", id);
    // Blocks built as nobody, like the server's own files, straight into the data volume.
    const script = "cat > /tmp/in.om && promtool tsdb create-blocks-from openmetrics /tmp/in.om /prometheus >/dev/null";
    await sh("docker", ["run", "--rm", "-i", "--log-driver", "none", "--user", "nobody", "-v", `${stack.project.volume("tsdb")}:/prometheus`, "--entrypoint", "sh", fixtureImage("prometheus"), "-c", script], `${lines.join("\n")}\n`);
    await docker("start", id);
    await prometheus.ready(stack);
  },
  damage: async (stack) => {
    await wipe(stack, "prom", "tsdb");
    await prometheus.ready(stack);
  },
  checksum: prometheusSamples,
};

/** Raw samples of the synthetic series, one line per series, sorted (the export API of VictoriaMetrics). */
async function victoriaSamples(stack: Stack): Promise<string> {
  const body = await inContainer(stack, "vm", `curl -sf 'http://localhost:8428/api/v1/export?match[]=synthetic_series&start=${first - 60}&end=${last + 60}'`);
  return body.split("\n").filter(Boolean).map((line) => {
    const series = JSON.parse(line) as { metric: unknown; values: unknown; timestamps: unknown };
    return `${JSON.stringify(series.metric)} ${JSON.stringify(series.timestamps)} ${JSON.stringify(series.values)}`;
  }).sort().join("\n");
}
const victoriametrics: StrategyFixture = {
  strategy: "victoriametrics",
  service: "vm",
  compose: `
  vm:
    image: ${fixtureImage("victoriametrics")}
    labels: { composure.victoriametrics.query: synthetic_series }
    volumes: ["vmdata:/victoria-metrics-data"]`,
  volumes: ["vmdata"],
  archiveOnly: "its snapshot is symlinks into the live parts, which restic stores as links: it is archived with the links followed",
  secrets: [],
  hot: true,
  needsRunning: true,
  ready: (stack) => eventually("victoriametrics", async () => {
    if ((await inContainer(stack, "vm", "curl -sf http://localhost:8428/health")).trim() !== "OK") throw new Error("not healthy");
  }),
  async seed(stack) {
    const lines: string[] = [];
    for (const instance of ["a", "b"]) for (let time = first; time <= last; time += 60) lines.push(`synthetic_series{instance="${instance}",job="synthetic"} ${(time / 60) % 89} ${time * 1000}`);
    await $({ quiet: true, input: `${lines.join("\n")}\n` })`docker exec -i ${await stack.container("vm")} curl -sf --data-binary @- http://localhost:8428/api/v1/import/prometheus`;
    await inContainer(stack, "vm", "curl -sf http://localhost:8428/internal/force_flush");
    await eventually("victoriametrics samples", async () => {
      if (!(await victoriaSamples(stack))) throw new Error("not searchable yet");
    }, 60);
  },
  write: (stack) => writerIn(stack, "vm", `i=0; while [ ! -e /tmp/stop-writer ]; do i=$((i+1)); echo "writer_ticks $i" | curl -sf --data-binary @- http://localhost:8428/api/v1/import/prometheus; sleep 0.05; done`),
  damage: async (stack) => {
    await wipe(stack, "vm", "vmdata");
    await victoriametrics.ready(stack);
  },
  checksum: victoriaSamples,
};

const cassandra: StrategyFixture = {
  strategy: "cassandra",
  service: "cass",
  compose: `
  cass:
    image: ${fixtureImage("cassandra")}
    hostname: cass
    stop_grace_period: 30s
    environment: { CASSANDRA_CLUSTER_NAME: conformance, CASSANDRA_SEEDS: cass, CASSANDRA_NUM_TOKENS: "16", MAX_HEAP_SIZE: 512M, HEAP_NEWSIZE: 128M }
    volumes: ["cassdata:/var/lib/cassandra"]`,
  volumes: ["cassdata"],
  secrets: [],
  hot: true,
  needsRunning: true,
  ready: (stack) => eventually("cassandra", async () => cql(await stack.container("cass"), "SELECT release_version FROM system.local;\n"), 300, 2000).then(() => undefined),
  async seed(stack) {
    // 2,000 rows in batches of 50 (Cassandra refuses large batches).
    const rows = Array.from({ length: 40 }, (_, batch) => `BEGIN UNLOGGED BATCH\n${Array.from({ length: 50 }, (_, i) => `INSERT INTO shop.orders (id, note) VALUES (${batch * 50 + i}, 'order ${batch * 50 + i}');`).join("\n")}\nAPPLY BATCH;`).join("\n");
    const schema = "CREATE KEYSPACE shop WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1};\nCREATE TABLE shop.orders (id int PRIMARY KEY, note text);\nCREATE TABLE shop.ticks (id int PRIMARY KEY);\n";
    await cql(await stack.container("cass"), `${schema}${rows}\n`);
  },
  write: (stack) => writerIn(stack, "cass", `i=0; while [ ! -e /tmp/stop-writer ]; do i=$((i+1)); echo "INSERT INTO shop.ticks (id) VALUES ($i);"; sleep 0.02; done | cqlsh --request-timeout=60 > /dev/null`),
  damage: async (stack) => {
    await cql(await stack.container("cass"), "TRUNCATE shop.orders;\n");
  },
  checksum: async (stack) => JSON.stringify(await tableChecksums(await stack.container("cass"), ["shop.orders"])),
};

const elasticsearch: StrategyFixture = {
  strategy: "elasticsearch",
  service: "search",
  compose: `
  search:
    image: ${fixtureImage("opensearch")}
    environment:
      - cluster.name=conformance
      - node.name=search
      - discovery.type=single-node
      - path.repo=/snapshots
      - bootstrap.memory_lock=false
      - OPENSEARCH_JAVA_OPTS=-Xms384m -Xmx384m
    volumes: ["searchdata:/usr/share/opensearch/data", "snapshots:/snapshots"]`,
  volumes: ["searchdata", "snapshots"],
  // Only one cluster may write to a snapshot repository: the drill's copy must not touch production's.
  untouchedByDrills: ["snapshots"],
  secrets: [],
  hot: true,
  needsRunning: true,
  ready: async (stack) => waitForHealth(await stack.container("search"), 1),
  seed: async (stack) => {
    const id = await stack.container("search");
    await bulk(id, bulkBody("events", 0, 700));
    await esOk(id, "POST", "/events/_refresh");
  },
  write: (stack) => writerIn(stack, "search", `i=0; while [ ! -e /tmp/stop-writer ]; do i=$((i+1)); curl -sf -o /dev/null -H 'Content-Type: application/json' -X PUT "http://localhost:9200/ticks/_doc/$i" -d "{\\"n\\": $i}"; sleep 0.05; done`),
  damage: async (stack) => {
    await esOk(await stack.container("search"), "DELETE", "/events,ticks?ignore_unavailable=true");
  },
  checksum: async (stack) => contentHash(await stack.container("search"), "events"),
};

/** Every strategy's fixture, in the order the suite reports them. */
export const strategyFixtures: StrategyFixture[] = [volume, postgres, mariadb, sqlite, redis, prometheus, victoriametrics, cassandra, elasticsearch];

/** One Compose file holding every fixture's service. */
export function fixtureStackYaml(fixtures: StrategyFixture[]): string {
  const volumes = fixtures.flatMap((fixture) => fixture.volumes);
  return `version: "3.8"\nservices:${fixtures.map((fixture) => fixture.compose).join("")}\nvolumes: { ${volumes.map((name) => `${name}: {}`).join(", ")} }\n`;
}

// The stack section: a Compose project of its own, `composure-bench-stack`, shaped like the
// reference stack (MariaDB, a 2-node Cassandra ring, a 2-node OpenSearch cluster sharing its
// snapshot repository, a stop-mode volume app depending on the database, SQLite, Prometheus) and
// holding about BENCH_SIZE GB, backed up whole twice in one run, each into its own destination
// (archive engine): with PARALLELISM=1, then with the default (the cores, at most 4). Figures:
// each `make backup`'s wall time, and each stop-mode service's downtime from the manifest.
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { client, loadTable, rowsPer500Mb } from "./cassandra.ts";
import { duBytes, machineBusySeconds, mariadbImage, mb, prometheusImage, removeDir, round, run, say, seconds, sqliteImage, waitUntil } from "./common.ts";
import { Composure, type StackRun } from "./composure.ts";
import { generateMixed } from "./datasets.ts";
import { api, documentsPer500Mb, loadIndex } from "./opensearch.ts";
import { busyboxBlock, cassandraBlock, composeFile, ComposeStack, openSearchBlock } from "./stack.ts";

export const stackProject = "composure-bench-stack";

/** Shares of BENCH_SIZE per engine; Prometheus holds only what it scrapes of itself. */
const shares = { app: 0.4, cassandra: 0.25, search: 0.15, db: 0.15, notes: 0.05 };

const ring = ["cassandra-node1", "cassandra-node2"];
const cluster = ["search1", "search2"];

/** Each service's volumes (the cluster's shared snapshot repository counted with its first node). */
const serviceVolumes: Record<string, string[]> = {
  db: ["dbdata"],
  app: ["appdata"],
  ...Object.fromEntries(ring.map((node) => [node, [`${node}-data`]])),
  [cluster[0]]: [`${cluster[0]}-data`, "snapshots"],
  [cluster[1]]: [`${cluster[1]}-data`],
  notes: ["notes"],
  prom: ["tsdb"],
};

function stackFile(rootPassword: string): string {
  const blocks = [
    ["  db:", `    image: ${mariadbImage}`, '    command: ["mariadbd", "--innodb-buffer-pool-size=256M"]', `    environment: { MARIADB_ROOT_PASSWORD: "${rootPassword}", MARIADB_DATABASE: shop, MARIADB_INITDB_SKIP_TZINFO: "1" }`, '    volumes: ["dbdata:/var/lib/mysql"]'],
    busyboxBlock("app", "appdata", "/data", ["    depends_on: [db]"]),
    cassandraBlock(ring[0], { cluster: stackProject, seeds: ring[0], heap: "512M", volume: `${ring[0]}-data` }),
    cassandraBlock(ring[1], { cluster: stackProject, seeds: ring[0], heap: "512M", volume: `${ring[1]}-data`, after: ring[0] }),
    ...cluster.map((name, index) => openSearchBlock(name, { cluster: stackProject, nodes: cluster, heap: "384m", volume: `${name}-data`, repository: "snapshots", publish: index === 0 })),
    // The fixture app writes a row every 0.5 s on its own connection, as a live app does.
    ["  notes:", `    image: ${sqliteImage}`, '    environment: { APP_INTERVAL: "0.5" }', '    volumes: ["notes:/data"]', "    labels: { composure.strategy: sqlite, composure.sqlite.paths: /data/app.db }"],
    ["  prom:", `    image: ${prometheusImage}`, '    command: ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus", "--web.enable-admin-api"]', '    volumes: ["tsdb:/prometheus"]'],
  ];
  return composeFile(blocks, Object.values(serviceVolumes).flat());
}

/** The stack's project; its compose file (with MariaDB's root password) lives in the work dir, mode 0600. */
export class ReferenceStack extends ComposeStack {
  constructor(work: string) {
    super(stackProject, path.join(work, "stack-compose.yml"), Object.values(serviceVolumes).flat());
    writeFileSync(this.file, stackFile(randomBytes(12).toString("hex")), { mode: 0o600 });
  }

  /** `docker exec` in a service's container. */
  async exec(service: string, argv: string[], timeoutMs: number): Promise<string> {
    return (await run("docker", ["exec", await this.containerId(service), ...argv], { timeoutMs })).stdout;
  }
}

async function ready(stack: ReferenceStack, timeoutMs: number): Promise<void> {
  const answers = (service: string, argv: string[]) => async () => (await stack.exec(service, argv, 30_000), true);
  await waitUntil("MariaDB on TCP (its init server listens on the socket only)", answers("db", ["sh", "-c", 'MYSQL_PWD="$MARIADB_ROOT_PASSWORD" mariadb -h127.0.0.1 -uroot -e "SELECT 1"']), timeoutMs);
  await waitUntil("Cassandra ring of 2 nodes up", async () => ((await stack.exec(ring[0], ["nodetool", "status"], 60_000)).match(/^UN /gm) ?? []).length === ring.length, timeoutMs, 5000);
  const search = api(await stack.published(cluster[0], 9200));
  await waitUntil("OpenSearch cluster of 2 nodes", async () => (await search("GET", `/_cluster/health?wait_for_status=green&wait_for_nodes=${cluster.length}&timeout=5s`, { timeoutMs: 10_000 })).timed_out === false, timeoutMs);
  await waitUntil("SQLite app's database", answers("notes", ["sqlite3", "-batch", "-cmd", ".timeout 20000", "/data/app.db", "SELECT count(*) FROM ticks"]), timeoutMs);
  await waitUntil("Prometheus", answers("prom", ["curl", "-sf", "http://localhost:9090/-/ready"]), timeoutMs);
}

/** MariaDB: shop.orders of about 1 KB a row (hex digests and repeated words), in statements of 20,000 rows. */
async function seedMariadb(stack: ReferenceStack, bytes: number, timeoutMs: number): Promise<void> {
  const sql = (statement: string) => stack.exec("db", ["sh", "-c", 'MYSQL_PWD="$MARIADB_ROOT_PASSWORD" mariadb -h127.0.0.1 -uroot shop -e "$1"', "sh", statement], timeoutMs);
  await sql("CREATE TABLE orders (id INT PRIMARY KEY, customer VARCHAR(32) NOT NULL, amount INT NOT NULL, body TEXT NOT NULL) ENGINE=InnoDB");
  const rows = Math.max(1000, Math.round(bytes / 1000));
  const body = "CONCAT_WS(' ', SHA2(seq, 512), SHA2(seq + 1, 512), SHA2(seq + 2, 512), SHA2(seq + 3, 512), REPEAT(ELT(1 + seq % 5, 'shipped ', 'pending ', 'returned ', 'paid ', 'open '), 50))";
  for (let first = 1; first <= rows; first += 20_000) {
    await sql(`INSERT INTO orders SELECT seq, CONCAT('customer-', seq % 9973), seq * 7919 % 100000, ${body} FROM seq_${first}_to_${Math.min(rows, first + 19_999)}`);
  }
}

/** SQLite: notes of about 1 KB a row next to the app's ticks, in one transaction, checkpointed. */
async function seedSqlite(stack: ReferenceStack, bytes: number, timeoutMs: number): Promise<void> {
  const rows = Math.max(1000, Math.round(bytes / 1000));
  const statements = [
    "CREATE TABLE notes (id INTEGER PRIMARY KEY, title TEXT, body TEXT);",
    `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${rows}) INSERT INTO notes SELECT i, 'note ' || i, hex(randomblob(256)) || ' ' || substr(replace(hex(zeroblob(100)), '00', 'note text '), 1, 480) FROM n;`,
    "PRAGMA wal_checkpoint(TRUNCATE);",
  ];
  await stack.exec("notes", ["sqlite3", "-batch", "-cmd", ".timeout 20000", "/data/app.db", statements.join(" ")], timeoutMs);
}

/** Loads every engine's share of `bytes`; returns the seconds it took. */
async function seed(stack: ReferenceStack, bytes: number, timeoutMs: number): Promise<number> {
  const started = process.hrtime.bigint();
  say(`stack: seeding about ${mb(bytes)} MB: volume ${mb(bytes * shares.app)} MB, Cassandra ${mb(bytes * shares.cassandra)} MB, OpenSearch ${mb(bytes * shares.search)} MB, MariaDB ${mb(bytes * shares.db)} MB, SQLite ${mb(bytes * shares.notes)} MB`);
  await generateMixed(await stack.mountpoint("appdata"), bytes * shares.app);
  await seedMariadb(stack, bytes * shares.db, timeoutMs);
  await seedSqlite(stack, bytes * shares.notes, timeoutMs);
  // The Cassandra and OpenSearch sections' datasets, spread over the ring's and the cluster's nodes.
  const nodes = await Promise.all(ring.map(async (node) => client(await stack.containerId(node), timeoutMs)));
  await loadTable(nodes, Math.max(2000, Math.round((rowsPer500Mb * bytes * shares.cassandra) / 500e6)), timeoutMs);
  await loadIndex(api(await stack.published(cluster[0], 9200)), Math.max(1000, Math.round((documentsPer500Mb * bytes * shares.search) / 500e6)), timeoutMs, cluster.length);
  return seconds(started);
}

async function serviceBytes(stack: ReferenceStack): Promise<Record<string, number>> {
  const bytes: Record<string, number> = {};
  for (const [service, volumes] of Object.entries(serviceVolumes)) {
    bytes[service] = 0;
    for (const volume of volumes) bytes[service] += await duBytes(await stack.mountpoint(volume));
  }
  return bytes;
}

/** Per service of the run: `pick` of its record; stop-mode services only when `stopModeOnly`. */
const perService = (run: StackRun, pick: (record: StackRun["services"][number]) => number, stopModeOnly = false) =>
  Object.fromEntries(run.services.filter((record) => !stopModeOnly || record.stopped.length > 0).map((record) => [record.name, round(pick(record))]));

/**
 * One whole-stack `make backup` into a destination of its own, removed after, with the CPU the
 * whole machine spent meanwhile (composure, its tools, the engines' dumps in their containers).
 */
async function backupWhole(composure: Composure, destination: string, env: Record<string, string>): Promise<StackRun & { machineCpuSeconds: number }> {
  try {
    const busyBefore = machineBusySeconds();
    const backup = await composure.backupAll(destination, env);
    const machineCpuSeconds = machineBusySeconds() - busyBefore;
    const downtimes = Object.entries(perService(backup, (record) => record.downtimeSeconds, true)).map(([name, value]) => `${name} down ${value} s`);
    say(`stack: make backup ${env.PARALLELISM ? `PARALLELISM=${env.PARALLELISM}` : "(default parallelism)"} ${round(backup.seconds)} s, the machine busy ${round(machineCpuSeconds)} CPU s; ${downtimes.join(", ") || "no stop-mode service"}`);
    return { ...backup, machineCpuSeconds };
  } finally {
    removeDir(destination);
  }
}

export interface StackFigures {
  /** Every volume of the stack, and per service (redo logs, commit logs and system tables included). */
  bytes: number;
  /** The data loaded: BENCH_SIZE GB, split between the services. */
  seeded_bytes: number;
  service_bytes: Record<string, number>;
  load_s: number;
  /** The default's units at once: composure's own rule (parallelismOf), the cores, at most 4. */
  parallelism: number;
  sequential_s: number;
  parallel_s: number;
  /** Per stop-mode service (containers stopped for its capture), from the manifest. */
  downtime_sequential_s: Record<string, number>;
  downtime_parallel_s: Record<string, number>;
  /** Per service: its own capture (manifest durationSeconds). */
  capture_sequential_s: Record<string, number>;
  capture_parallel_s: Record<string, number>;
  stored_bytes: number;
  /** CPU seconds the whole machine was busy during each backup: on `cores` cores no run can take less than cpu / cores. */
  machine_cpu_sequential_s: number;
  machine_cpu_parallel_s: number;
  cores: number;
  /** Cores the running stack keeps busy on its own (the JVMs' housekeeping), measured before the backups. */
  idle_cores_busy: number;
}

/** The cores the machine keeps busy on average over `secondsToWatch`. */
async function idleLoad(secondsToWatch: number): Promise<number> {
  const before = machineBusySeconds();
  await new Promise((resolve) => setTimeout(resolve, secondsToWatch * 1000));
  return (machineBusySeconds() - before) / secondsToWatch;
}

export async function measureStack(stack: ReferenceStack, sizeGb: number, work: string, timeoutMs: number): Promise<StackFigures> {
  try {
    say("stack: starting MariaDB, the Cassandra ring, the OpenSearch cluster, the app, SQLite and Prometheus");
    await stack.start();
    await ready(stack, 600_000);
    const seeded = sizeGb * 1024 ** 3;
    const loadSeconds = await seed(stack, seeded, timeoutMs);
    const bytes = await serviceBytes(stack);
    const total = Object.values(bytes).reduce((sum, value) => sum + value, 0);
    say(`stack: ${mb(total)} MB in its volumes (the engines' logs and system tables besides the data), seeded in ${round(loadSeconds, 1)} s`);
    const idle = await idleLoad(5);
    say(`stack: idle, the stack keeps ${round(idle, 2)} of ${os.availableParallelism()} cores busy`);
    const composure = new Composure(work, timeoutMs, stackProject);
    const sequential = await backupWhole(composure, path.join(work, "stack-sequential"), { PARALLELISM: "1" });
    const parallel = await backupWhole(composure, path.join(work, "stack-parallel"), {});
    const stored = (run: StackRun) => run.services.flatMap((record) => record.artifacts).reduce((sum, artifact) => sum + artifact.bytes, 0);
    return {
      bytes: total,
      seeded_bytes: Math.round(seeded),
      service_bytes: bytes,
      load_s: round(loadSeconds),
      parallelism: Math.min(os.availableParallelism(), 4),
      sequential_s: round(sequential.seconds),
      parallel_s: round(parallel.seconds),
      downtime_sequential_s: perService(sequential, (record) => record.downtimeSeconds, true),
      downtime_parallel_s: perService(parallel, (record) => record.downtimeSeconds, true),
      capture_sequential_s: perService(sequential, (record) => record.durationSeconds),
      capture_parallel_s: perService(parallel, (record) => record.durationSeconds),
      stored_bytes: stored(parallel),
      machine_cpu_sequential_s: round(sequential.machineCpuSeconds),
      machine_cpu_parallel_s: round(parallel.machineCpuSeconds),
      cores: os.availableParallelism(),
      idle_cores_busy: round(idle),
    };
  } finally {
    await stack.down();
  }
}

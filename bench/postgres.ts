// The PostgreSQL dataset: about BENCH_SIZE GB of tables generated with generate_series inside
// the postgres fixture, then composure's postgres strategy (pg_dump -Fc -Z0 in the container,
// multi-threaded zstd on the host) against `docker exec ... pg_dumpall | gzip`, the usual recipe,
// on the same database in the same run; then composure's restore (DROP + pg_restore --create).
import { statSync } from "node:fs";
import path from "node:path";
import { dropCaches, mb, measure, removeDir, round, run, say, timeRoundTrip, type RoundTripFigures } from "./common.ts";
import type { Composure } from "./composure.ts";
import type { BenchStack } from "./stack.ts";
import { rawRead } from "./volume.ts";

/** Rows of `orders` per GB of database (tables and indexes), measured on the fixture (PostgreSQL 15). */
const ordersPerGb = 4_400_000;

export interface PostgresFigures extends RoundTripFigures {
  server_version: string;
  rows: number;
  database_bytes: number;
  volume_bytes: number;
  generate_s: number;
  raw_read_s: number;
  pg_dumpall_gzip_s: number;
  pg_dumpall_gzip_cpu_s?: number;
  pg_dumpall_gzip_bytes: number;
  dump_compress_s: number;
  restore_rows_ok: boolean;
  dump_vs_pg_dumpall: number;
}

/** The products (g * 7919 ...) are taken in bigint: in int they overflow above 271,000 rows. */
function generationSql(rows: number): string[] {
  const customers = Math.max(1000, Math.round(rows / 20));
  return [
    "CREATE TABLE customers (id int NOT NULL, name text NOT NULL, email text NOT NULL, country char(2) NOT NULL, created_at timestamptz NOT NULL)",
    `INSERT INTO customers SELECT g, 'customer ' || g, 'user' || g || '@example.com', (ARRAY['DE','FR','NL','US','GB','ES','IT','PL'])[g % 8 + 1], timestamptz '2020-01-01 00:00:00+00' + g * interval '37 seconds' FROM generate_series(1, ${customers}) g`,
    "CREATE TABLE orders (id bigint NOT NULL, customer_id int NOT NULL, created_at timestamptz NOT NULL, status text NOT NULL, amount numeric(12,2) NOT NULL, items jsonb NOT NULL, note text NOT NULL)",
    `INSERT INTO orders SELECT g, g % ${customers} + 1, timestamptz '2022-01-01 00:00:00+00' + g * interval '3 seconds', (ARRAY['pending','paid','shipped','delivered','cancelled'])[g % 5 + 1], (g::bigint * 7919 % 100000) / 100.0, jsonb_build_array(jsonb_build_object('sku', 'SKU-' || (g::bigint * 31 % 50000), 'qty', g % 5 + 1, 'price', (g::bigint * 13 % 10000) / 100.0)), md5(g::text) || ' ' || substr(md5((g / 3)::text), 1, 20) FROM generate_series(1, ${rows}) g`,
    "ALTER TABLE customers ADD PRIMARY KEY (id)",
    "ALTER TABLE orders ADD PRIMARY KEY (id)",
    "CREATE INDEX orders_customer ON orders (customer_id)",
    "VACUUM ANALYZE",
    "CHECKPOINT",
  ];
}

/**
 * Waits until the server accepts TCP connections (the first start initialises on a socket-only
 * server), so its initdb does not run during the other parts' measurements.
 */
export async function waitForPostgres(stack: BenchStack, service: string): Promise<string> {
  const container = await stack.containerId(service);
  const deadline = Date.now() + 300_000;
  while ((await run("docker", ["exec", container, "pg_isready", "-h", "127.0.0.1", "-q"], { allowFailure: true, timeoutMs: 30_000 })).code !== 0) {
    if (Date.now() > deadline) throw new Error("postgres did not accept connections within 300 s of its start");
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  return container;
}

export async function measurePostgres(stack: BenchStack, composure: Composure, service: string, volume: string, sizeGb: number, work: string, timeoutMs: number): Promise<PostgresFigures> {
  const container = await waitForPostgres(stack, service);
  const psql = async (sql: string[], database = "bench") =>
    (await run("docker", ["exec", container, "psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-U", "postgres", "-d", database, ...sql.flatMap((statement) => ["-c", statement])], { timeoutMs })).stdout.trim();
  const rows = Math.max(10_000, Math.round(ordersPerGb * sizeGb));
  say(`postgres: generating ${rows.toLocaleString("en-US")} orders with generate_series`);
  const generated = await run("docker", ["exec", container, "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-U", "postgres", "-d", "bench", ...generationSql(rows).flatMap((statement) => ["-c", statement])], { timeoutMs });
  const serverVersion = await psql(["SHOW server_version"]);
  const databaseBytes = Number(await psql(["SELECT pg_database_size('bench')"]));
  const volumeName = stack.volumeName(volume);
  const mountpoint = await stack.mountpoint(volume);
  const volumeBytes = Number((await run("du", ["-sb", mountpoint])).stdout.split("\t")[0]);
  say(`postgres: database ${mb(databaseBytes)} MB (data directory ${mb(volumeBytes)} MB) in ${round(generated.seconds, 1)} s`);

  // The limit for a dump: reading the database's files once (base/ and global/, not the WAL).
  const raw = await rawRead(volumeName, timeoutMs, "base global");
  say(`postgres: raw read of the database files ${round(raw)} s`);
  const dumpFile = path.join(work, "pg_dumpall.sql.gz");
  await dropCaches();
  const classic = await measure("bash", ["-c", 'set -o pipefail; docker exec "$0" pg_dumpall -U postgres | gzip > "$1"', container, dumpFile], { timeoutMs, statsFile: path.join(work, "pg_dumpall-time.txt") });
  const classicBytes = statSync(dumpFile).size;
  removeDir(dumpFile);
  say(`postgres: pg_dumpall | gzip ${round(classic.seconds)} s, ${mb(classicBytes)} MB`);

  const counts = () => psql(["SELECT (SELECT count(*) FROM orders) || '/' || (SELECT count(*) FROM customers)"]);
  const before = await counts();
  const { backup, figures: roundTrip } = await timeRoundTrip(composure, service, "postgres", "postgres", work);
  const after = await counts();
  if (after !== before) say(`postgres: rows after the restore ${after}, expected ${before}`);

  return {
    server_version: serverVersion,
    rows,
    database_bytes: databaseBytes,
    volume_bytes: volumeBytes,
    generate_s: round(generated.seconds),
    raw_read_s: round(raw),
    pg_dumpall_gzip_s: round(classic.seconds),
    pg_dumpall_gzip_cpu_s: classic.cpuSeconds,
    pg_dumpall_gzip_bytes: classicBytes,
    ...roundTrip,
    dump_compress_s: backup.serviceSeconds,
    restore_rows_ok: after === before,
    dump_vs_pg_dumpall: round(classic.seconds / backup.serviceSeconds),
  };
}

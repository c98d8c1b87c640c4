// The Cassandra dataset: one table of about 500 MB x BENCH_SIZE on disk, in a single node of the
// fixture image, loaded with cqlsh COPY FROM from a CSV that python3 writes inside the container
// (a fixed seed: the same rows on every machine). Then composure's cassandra strategy (a snapshot
// over JMX, the snapshot's directories through the host FIFO into zstd; hot) and its
// restore (TRUNCATE + nodetool import), against a raw read of the node's data directory. Then the
// node is recreated on an empty volume, a new ring with new tokens as after a disaster, and the
// same run restored again: the bulk loader (sstableloader) path, per GB next to the import's.
import path from "node:path";
import { duBytes, mb, measureEngineWithSlope, removeDir, round, run, say, waitUntil, type AfterRestore, type EngineFigures, type Growth, type SlopeFigures } from "./common.ts";
import type { Composure } from "./composure.ts";
import { MedusaPeer, type MedusaFigures } from "./medusa.ts";
import type { BenchStack } from "./stack.ts";
import { rawRead } from "./volume.ts";

/** Rows of bench.events per 500 MB of SSTables (LZ4-compressed: 3.1 KB a row), measured on the fixture (Cassandra 5.0). */
export const rowsPer500Mb = 168_000;
const csv = "/tmp/bench-events.csv";

// Rows of about 4 KB: ~1 KB of words (compressible) and 3 KB of hex (LZ4 cannot shrink it; zstd
// halves it), in partitions of 100 rows. Python's Random is the same on every machine for a seed.
const generator = `
import random, sys
rows, out, first = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
rng = random.Random(500 + first)
words = ["alpha", "beta", "gamma", "delta", "order", "customer", "status", "shipped", "pending", "total", "amount", "EUR", "note"]
with open(out, "w") as f:
    for i in range(first, first + rows):
        text = " ".join(words[(i * k + k * k) % 13] for k in range(1, 160))
        f.write("%d,%d,%d,%s,%d,%s %s\\n" % (i // 100, i % 100, 1700000000000 + i * 1000, words[i % 13], i * 7919 % 100000, text, rng.randbytes(1536).hex()))
`;

const schema = [
  "CREATE KEYSPACE IF NOT EXISTS bench WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1};",
  "CREATE TABLE IF NOT EXISTS bench.events (bucket int, seq int, at timestamp, kind text, amount int, body text, PRIMARY KEY (bucket, seq));",
].join("\n");

// Batches of 10 rows (40 KB) stay below Cassandra's batch_size_fail_threshold (50 KiB).
const copyFrom = `COPY bench.events (bucket, seq, at, kind, amount, body) FROM '${csv}' WITH MAXATTEMPTS = 20 AND MAXBATCHSIZE = 10 AND NUMPROCESSES = 2;`;

// One count(*) of the whole table outlives the server's range_request_timeout (10 s) at 500 MB:
// count 64 token ranges (each a 64th of the Murmur3 token space) and add them up.
const countStatements = Array.from({ length: 64 }, (_, index) => {
  const low = -(2n ** 63n) + BigInt(index) * 2n ** 58n;
  const high = index === 63 ? 2n ** 63n - 1n : low + 2n ** 58n;
  return `SELECT count(*) FROM bench.events WHERE token(bucket) > ${low} AND token(bucket) <= ${high};`;
}).join("\n");

/** cqlsh and nodetool inside the node's container, and the table's row count. */
export function client(container: string, timeoutMs: number) {
  const inNode = (argv: string[], allowFailure = false) => run("docker", ["exec", container, ...argv], { timeoutMs, allowFailure });
  const cqlsh = async (statements: string, allowFailure = false) => (await inNode(["cqlsh", "--request-timeout=600", "-e", statements], allowFailure)).stdout;
  const count = async () => [...(await cqlsh(countStatements)).matchAll(/^\s*(\d+)\s*$/gm)].reduce((sum, match) => sum + Number(match[1]), 0);
  return { inNode, cqlsh, count };
}

export type CassandraClient = ReturnType<typeof client>;

/**
 * Creates bench.events (unless there) and loads generated rows `first` to `first + rows - 1`
 * through the first node (the table holds the rows before `first`); every node flushed to
 * SSTables, compactions done.
 */
export async function loadTable(nodes: CassandraClient[], rows: number, timeoutMs: number, first = 0): Promise<void> {
  const { inNode, cqlsh, count } = nodes[0];
  await cqlsh(schema);
  await inNode(["python3", "-c", generator, String(rows), csv, String(first)]);
  // cqlsh exits 2 after any timeout, even one its retries overcame: count, and load once more (COPY upserts).
  let loads = 0;
  let loaded = 0;
  while (loaded !== first + rows) {
    if (loads === 2) throw new Error(`Cassandra holds ${loaded} of ${first + rows} rows after 2 loads`);
    if (loads === 1) say(`cassandra: ${loaded} of ${first + rows} rows after the first load (cqlsh gave up on some batches): loading again`);
    await cqlsh(copyFrom, true);
    loads += 1;
    loaded = await count();
  }
  await inNode(["rm", "-f", csv]);
  for (const node of nodes) await settle(node, loads === 2, timeoutMs);
}

/** Flushes the node's memtables; waits for its compactions (they would compete with the measurements). */
async function settle({ inNode }: CassandraClient, reloaded: boolean, timeoutMs: number): Promise<void> {
  await inNode(["nodetool", "flush", "bench"]);
  // A second load wrote the rows again: a major compaction keeps one copy, so the table has its usual size.
  if (reloaded) await inNode(["nodetool", "compact", "bench"]);
  await waitUntil("end of Cassandra's compactions", async () => /^pending tasks:?\s+0\b/m.test((await inNode(["nodetool", "compactionstats"])).stdout), timeoutMs, 5000);
}

export interface CassandraFigures extends EngineFigures, SlopeFigures, MedusaFigures {
  /** The same run restored into a new ring (new tokens): sstableloader. */
  restore_new_ring_s: number;
  restore_new_ring_records_ok: boolean;
  restore_s_per_gb: number;
  restore_new_ring_s_per_gb: number;
  /** The 2x table in both storage engines, first and again after 5% new rows (absent without restic). */
  engines?: StorageEngineFigures;
  /** composure's repository engine (like medusa's differential storage) on the 2x table, next to medusa's. */
  composure_first_s?: number;
  composure_second_s?: number;
  /** The row facts of the 2x table's first (archive) backup: table figures and exact counts, from its log; and that backup's time. */
  facts_s?: number;
  facts_backup_s?: number;
}

/** Seconds the row facts took, from a backup's log line `row facts: ... in X s, ... in Y s before the snapshot and Z s after it`. */
export function factsSecondsOf(log: string): number | undefined {
  const line = log.split("\n").find((entry) => entry.includes("row facts:"));
  if (!line) return undefined;
  return [...line.matchAll(/([\d.]+) s\b/g)].reduce((sum, match) => sum + Number(match[1]), 0);
}

export interface StorageEngineFigures {
  table_bytes: number;
  archive_first_s: number;
  archive_first_bytes: number;
  repository_first_s: number;
  repository_first_added_bytes: number;
  /** After 5% more rows (flushed): a second backup of each engine. */
  archive_second_s: number;
  archive_second_bytes: number;
  repository_second_s: number;
  repository_second_added_bytes: number;
}

/**
 * The table as it is (2x after the slope), backed up by the archive engine and by the repository
 * engine, then 5% more rows and a second backup of each: what a nightly incremental costs. SSTables
 * are immutable, so the repository's second run adds the new SSTables (and what compaction rewrote).
 * cassandra-medusa backs up the same node right after each pair (bench/medusa.ts).
 */
async function measureStorageEngines(composure: Composure, service: string, container: string, grow: Growth["grow"], rows: number, datasetBytes: () => Promise<number>, work: string, timeoutMs: number): Promise<{ engines: StorageEngineFigures; medusa: MedusaFigures; facts: Pick<CassandraFigures, "facts_s" | "facts_backup_s"> }> {
  const [archiveDestination, repositoryDestination] = [path.join(work, "cass-archive"), path.join(work, "cass-repository")];
  try {
    const tableBytes = await datasetBytes();
    const medusa = await MedusaPeer.install(container, work, timeoutMs);
    const archiveFirst = await composure.backup(service, archiveDestination, { STORAGE: "archive" });
    const repositoryFirst = await composure.backup(service, repositoryDestination, { STORAGE: "repository" });
    await medusa.backup("first");
    const medusaFirst = medusa.figures.medusa_first_s === undefined ? "" : `, medusa ${medusa.figures.medusa_first_s} s (${mb(medusa.figures.medusa_first_bytes!)} MB)`;
    say(`cassandra engines: ${mb(tableBytes)} MB table, first backup: archive ${round(archiveFirst.seconds)} s (${mb(archiveFirst.storedBytes)} MB), repository ${round(repositoryFirst.seconds)} s (${mb(repositoryFirst.addedBytes ?? 0)} MB added)${medusaFirst}`);
    const more = Math.round(rows * 0.05);
    await grow(more, rows);
    const archiveSecond = await composure.backup(service, archiveDestination, { STORAGE: "archive" });
    const repositorySecond = await composure.backup(service, repositoryDestination, { STORAGE: "repository" });
    await medusa.backup("second");
    const medusaSecond = medusa.figures.medusa_second_s === undefined ? "" : `, medusa ${medusa.figures.medusa_second_s} s (${mb(medusa.figures.medusa_second_added_bytes!)} MB added)`;
    say(`cassandra engines: after ${more.toLocaleString("en-US")} more rows (5%): archive ${round(archiveSecond.seconds)} s (${mb(archiveSecond.storedBytes)} MB), repository ${round(repositorySecond.seconds)} s (${mb(repositorySecond.addedBytes ?? 0)} MB added)${medusaSecond}`);
    const engines = {
      table_bytes: tableBytes,
      archive_first_s: round(archiveFirst.seconds),
      archive_first_bytes: archiveFirst.storedBytes,
      repository_first_s: round(repositoryFirst.seconds),
      repository_first_added_bytes: repositoryFirst.addedBytes ?? 0,
      archive_second_s: round(archiveSecond.seconds),
      archive_second_bytes: archiveSecond.storedBytes,
      repository_second_s: round(repositorySecond.seconds),
      repository_second_added_bytes: repositorySecond.addedBytes ?? 0,
    };
    const factsSeconds = factsSecondsOf(archiveFirst.log);
    const facts = factsSeconds === undefined ? {} : { facts_s: round(factsSeconds), facts_backup_s: round(archiveFirst.seconds) };
    return { engines, medusa: medusa.figures, facts };
  } finally {
    removeDir(archiveDestination);
    removeDir(repositoryDestination);
  }
}

/** `withRestic`: also compare the storage engines on the 2x table (measureStorageEngines). */
export async function measureCassandra(stack: BenchStack, composure: Composure, service: string, volume: string, sizeGb: number, work: string, timeoutMs: number, withRestic: boolean): Promise<CassandraFigures> {
  await stack.start(service);
  try {
    const node = client(await stack.containerId(service), timeoutMs);
    const release = async (allowFailure = false) => /^\s*(\d[\w.-]*)\s*$/m.exec(await node.cqlsh("SELECT release_version FROM system.local;", allowFailure))?.[1];
    await waitUntil("answer from Cassandra's CQL port", async () => (await release(true)) !== undefined, 300_000);
    const rows = Math.max(2000, Math.round(rowsPer500Mb * sizeGb));
    say(`cassandra: generating ${rows.toLocaleString("en-US")} rows of about 4 KB with cqlsh COPY FROM (half, then the rest; twice as many for the slope)`);
    const mountpoint = await stack.mountpoint(volume);
    const datasetBytes = () => duBytes(path.join(mountpoint, "data", "bench"));
    const growth: Growth = {
      // The node is new after the restore into a new ring: its container asked each time.
      grow: async (count, first) => loadTable([client(await stack.containerId(service), timeoutMs)], count, timeoutMs, first),
      datasetBytes,
      describe: async (loadSeconds) => {
        const [tableBytes, dataDirBytes] = [await datasetBytes(), await duBytes(path.join(mountpoint, "data"))];
        say(`cassandra: table ${mb(tableBytes)} MB on disk (data directory ${mb(dataDirBytes)} MB), loaded in ${round(loadSeconds, 1)} s`);
        return { engine_version: (await release()) ?? "?", records: rows, dataset_bytes: tableBytes, data_dir_bytes: dataDirBytes, load_s: round(loadSeconds) };
      },
    };
    const readRaw = () => rawRead(stack.volumeName(volume), timeoutMs, "data");
    const count = async () => client(await stack.containerId(service), timeoutMs).count();
    const newRing = { restore_new_ring_s: 0, restore_new_ring_records_ok: false };
    const restoreIntoNewRing: AfterRestore = async (runId, destination) => {
      await stack.remove(service);
      await run("docker", ["volume", "rm", stack.volumeName(volume)], { timeoutMs });
      await stack.start(service);
      const fresh = client(await stack.containerId(service), timeoutMs);
      await waitUntil("answer from the new node's CQL port", async () => /release_version/.test(await fresh.cqlsh("SELECT release_version FROM system.local;", true)), 300_000);
      const restore = await composure.restore(service, destination, runId);
      const restored = await fresh.count();
      say(`cassandra: restore into a new ring (sstableloader) ${round(restore.seconds)} s, ${restored === rows ? "all rows back" : `${restored} of ${rows} rows`}`);
      Object.assign(newRing, { restore_new_ring_s: round(restore.seconds), restore_new_ring_records_ok: restored === rows });
      return newRing;
    };
    const figures = await measureEngineWithSlope({ composure, service, strategy: "cassandra", label: "cassandra", work, readRaw, count, afterRestore: restoreIntoNewRing }, rows, growth);
    const perGb = (seconds: number) => round(seconds / (figures.dataset_bytes / 1e9));
    const perGbFigures = { restore_s_per_gb: perGb(figures.restore_s), restore_new_ring_s_per_gb: perGb(newRing.restore_new_ring_s) };
    if (!withRestic) return { ...figures, ...newRing, ...perGbFigures, medusa_not_measured: "restic is missing: the storage engines medusa is compared with were not measured" };
    const { engines, medusa, facts } = await measureStorageEngines(composure, service, await stack.containerId(service), growth.grow, 2 * rows, datasetBytes, work, timeoutMs);
    return { ...figures, ...newRing, ...perGbFigures, engines, ...medusa, ...facts, composure_first_s: engines.repository_first_s, composure_second_s: engines.repository_second_s };
  } finally {
    await stack.remove(service);
  }
}

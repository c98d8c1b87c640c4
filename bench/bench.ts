// make bench: one run on generated, deterministic data, printing one table of absolute times and
// the ratios the issue targets (PASS/MISS), and writing everything to bench/results.json.
//   BENCH_SIZE=1            GB of the mixed volume; the other datasets scale with it
//   BENCH_ONLY=a,b          a subset of: volume smallfiles postgres peers repository s3 scaling cassandra opensearch stack (peers implies volume)
//   BENCH_SCALING=0         skip the scaling series (0.25, 0.5, 1, 2 x BENCH_SIZE)
//   BENCH_DROP_CACHES=1     drop the page cache before each timed read (root; empties the whole machine's cache)
//   BENCH_INSTALL=0         never apt-get install a missing peer (restic)
//   BENCH_OFFEN_VERSION=    the offen/docker-volume-backup release to go install (BENCH_OFFEN_BIN= a built binary)
// Parts: the mixed volume (raw read, classic recipe, composure backup/restore, stop-mode
// downtime) and the peers on it (restic, offen/docker-volume-backup); 100,000 small files; a
// PostgreSQL database (postgres strategy vs pg_dumpall | gzip); the repository engine on a mixed
// volume of its own (first, unchanged and 1%-changed backups and a restore, against the archive
// engine and restic alone); off-site copies to a local S3 server (rclone serve s3: composure's
// upload and download of the mixed volume's run against rclone copy alone); the scaling series; a Cassandra table and an OpenSearch index (500 MB
// per GB of BENCH_SIZE; their strategies against a raw read of the engine's data directory,
// figures only; with restic, the Cassandra table grown to 2x in both storage engines, first and
// again after 5% new rows, each time next to cassandra-medusa on the same node); a whole stack shaped like the reference (about BENCH_SIZE GB in a project of its
// own) backed up with PARALLELISM=1 and with the default.
import { readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { busyboxImage, cassandraImage, coldCache, docker, inJvmTurn, interrupt, isInterrupted, limitMs, mariadbImage, opensearchImage, postgresImage, prometheusImage, sqliteImage, readSettings, removeDir, root, run, say, stopChildren, versionOf, type Section } from "./common.ts";
import { measureCassandra } from "./cassandra.ts";
import { Composure } from "./composure.ts";
import { generateMixed, generateSmallFiles } from "./datasets.ts";
import { measureOffen, measureRestic, type PeerFigures } from "./peers.ts";
import { measureOpenSearch } from "./opensearch.ts";
import { measurePostgres, waitForPostgres } from "./postgres.ts";
import { measureRepository, resticMissing } from "./repository.ts";
import { checkTargets, formatTable, type Results } from "./report.ts";
import { measureS3 } from "./s3.ts";
import { measureScaling } from "./scaling.ts";
import { measureStack, ReferenceStack } from "./reference-stack.ts";
import { BenchStack, removeHelpers, volumesOf, type ServiceSpec } from "./stack.ts";
import { measureVolume } from "./volume.ts";

const settings = (() => {
  try {
    return readSettings();
  } catch (error) {
    process.stderr.write(`make bench: ${(error as Error).message}\n`);
    process.exit(2);
  }
})();
const { sizeGb, only, work } = settings;
const timeoutMs = limitMs(sizeGb);
const smallFileCount = Math.max(1000, Math.round(100_000 * sizeGb));

const services: Record<Exclude<Section, "peers" | "stack">, ServiceSpec> = {
  volume: { name: "app", volume: "data", kind: "busybox" },
  smallfiles: { name: "files", volume: "smallfiles", kind: "busybox" },
  postgres: { name: "db", volume: "pgdata", kind: "postgres" },
  repository: { name: "repo", volume: "repodata", kind: "busybox" },
  s3: { name: "offsite", volume: "s3data", kind: "busybox" },
  scaling: { name: "scale", volume: "scale", kind: "busybox" },
  cassandra: { name: "cass", volume: "cassdata", kind: "cassandra" },
  opensearch: { name: "search", volume: "searchdata", kind: "opensearch" },
};
const jvmSections = new Set<Section>(["cassandra", "opensearch", "stack"]);
const wanted = (Object.keys(services) as (keyof typeof services)[]).filter((section) => only.has(section));
const stack = new BenchStack(
  work,
  wanted.map((section) => services[section]),
  Object.values(services).flatMap(volumesOf),
);
const referenceStack = only.has("stack") ? new ReferenceStack(work) : undefined;

let cleaned = false;
async function cleanUp(): Promise<void> {
  if (cleaned) return;
  cleaned = true;
  stopChildren();
  await removeHelpers();
  await stack.down();
  await referenceStack?.down();
  removeDir(work);
}
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    interrupt(signal);
    say(`${signal}: stopping; removing the bench project, its volumes and ${work}`);
    void cleanUp().finally(() => process.exit(signal === "SIGINT" ? 130 : 143));
  });
}

/** An image's name with the start of its id: which build was measured. */
const imageVersion = async (image: string) => `${image} ${await docker("image", "inspect", "-f", "{{.Id}}", image).then((id) => id.slice(7, 19)).catch(() => "?")}`;

async function machineAndVersions(): Promise<Record<string, unknown>> {
  const cpus = os.cpus();
  return {
    machine: {
      cpus: cpus.length,
      cpu_model: cpus[0]?.model,
      memory_gb: Math.round(os.totalmem() / 1024 ** 3),
      kernel: os.release(),
      load_average_at_start: os.loadavg().map((value) => Math.round(value * 100) / 100),
      page_cache: coldCache ? "dropped before each timed read (BENCH_DROP_CACHES=1)" : "warm: every tool reads the freshly generated data",
    },
    versions: {
      docker: await docker("version", "--format", "{{.Server.Version}}"),
      compose: (await versionOf("docker", ["compose", "version", "--short"])) ?? (await versionOf("docker-compose", ["version", "--short"])),
      node: process.version,
      zstd: await versionOf("zstd", ["--version"]),
      gzip: await versionOf("gzip", ["--version"]),
      go: await versionOf("go", ["version"], /go\d+\.\d+(\.\d+)?/),
      busybox_image: await imageVersion(busyboxImage),
      postgres_image: only.has("postgres") ? await imageVersion(postgresImage) : undefined,
      cassandra_image: only.has("cassandra") || only.has("stack") ? await imageVersion(cassandraImage) : undefined,
      opensearch_image: only.has("opensearch") || only.has("stack") ? await imageVersion(opensearchImage) : undefined,
      ...(only.has("stack") ? { mariadb_image: await imageVersion(mariadbImage), sqlite_image: await imageVersion(sqliteImage), prometheus_image: await imageVersion(prometheusImage) } : {}),
    },
  };
}

async function main(): Promise<void> {
  await docker("info", "--format", "{{.ServerVersion}}").catch((error: Error) => {
    throw new Error(`make bench needs a running Docker engine: ${error.message}`);
  });
  const stackImages = only.has("stack") ? ["mariadb", "cassandra", "opensearch", "sqlite", "prometheus"] : [];
  const images = [...new Set(["busybox", ...(["postgres", "cassandra", "opensearch"] as const).filter((section) => only.has(section)), ...stackImages])];
  await run("bash", [path.join(root, "test/images/build.sh"), ...images], { timeoutMs: 3_600_000 });
  const header = await machineAndVersions();
  say(`BENCH_SIZE=${sizeGb} GB, parts: ${[...only].join(", ")}; scratch ${work}`);
  const composure = new Composure(work, timeoutMs);
  const results: Results = { settings: { size_gb: sizeGb, only: [...only] }, not_measured: {} };
  const peerVersions: Record<string, string | undefined> = {};

  await stack.up();
  if (only.has("postgres")) await waitForPostgres(stack, services.postgres.name);
  await referenceStack?.down(); // leftovers of an interrupted run
  // A part that fails is reported with its reason; the other parts still run. The JVM engines'
  // parts wait for the machine's Cassandra turn, as the integration tests do.
  const part = async (section: Section, body: () => Promise<void>) => {
    if (!only.has(section)) return;
    try {
      await (jvmSections.has(section) ? inJvmTurn(body) : body());
    } catch (error) {
      if (isInterrupted()) throw error;
      say(`${section}: FAILED: ${(error as Error).message}`);
      results.not_measured[section] = `failed: ${(error as Error).message.slice(0, 500)}`;
    }
  };
  await part("volume", async () => {
    const dataset = { label: "mixed", service: services.volume.name, volume: services.volume.volume, generate: (dir: string) => generateMixed(dir, sizeGb * 1024 ** 3) };
    const { figures, mountpoint } = await measureVolume(stack, composure, dataset, work, timeoutMs);
    results.volume = { size_gb: sizeGb, ...figures };
    await part("peers", async () => {
      const peers: PeerFigures[] = [await measureRestic(mountpoint, figures.bytes, work, timeoutMs), ...(await measureOffen(mountpoint, work, timeoutMs))];
      results.peers = peers;
      for (const peer of peers) peerVersions[peer.tool.split(" ")[0]] = peer.version ?? `not measured: ${peer.not_measured}`;
    });
  });
  if (only.has("peers") && !results.peers && !results.not_measured.peers) results.not_measured.peers = "the mixed volume they run on could not be measured";
  await part("smallfiles", async () => {
    const dataset = { label: "small files", service: services.smallfiles.name, volume: services.smallfiles.volume, generate: (dir: string) => generateSmallFiles(dir, smallFileCount) };
    const { figures } = await measureVolume(stack, composure, dataset, work, timeoutMs);
    results.smallfiles = { file_count: smallFileCount, ...figures };
  });
  await part("postgres", async () => {
    results.postgres = await measurePostgres(stack, composure, services.postgres.name, services.postgres.volume, sizeGb, work, timeoutMs);
  });
  await part("repository", async () => {
    const missing = await resticMissing();
    if (missing) return void (results.not_measured.repository = missing);
    results.repository = await measureRepository(stack, composure, services.repository.name, services.repository.volume, sizeGb, work, timeoutMs);
  });
  await part("s3", async () => {
    results.s3 = await measureS3(stack, composure, services.s3.name, services.s3.volume, sizeGb, work, timeoutMs);
  });
  await part("scaling", async () => {
    results.scaling = await measureScaling(stack, composure, services.scaling.name, services.scaling.volume, sizeGb, work, limitMs(sizeGb * 2));
  });
  await part("cassandra", async () => {
    const withRestic = (await resticMissing()) === undefined; // else the storage engines are not compared
    results.cassandra = await measureCassandra(stack, composure, services.cassandra.name, services.cassandra.volume, sizeGb, work, timeoutMs, withRestic);
  });
  await part("opensearch", async () => {
    results.opensearch = await measureOpenSearch(stack, composure, services.opensearch.name, services.opensearch.volume, sizeGb, work, timeoutMs);
  });
  await part("stack", async () => {
    results.stack = await measureStack(referenceStack!, sizeGb, work, timeoutMs);
  });
  if (Object.keys(results.not_measured).some((section) => results.not_measured[section].startsWith("failed:"))) process.exitCode = 1;

  if (isInterrupted()) throw new Error("interrupted: no results written");
  const targets = checkTargets(results);
  const output = {
    measuredAt: new Date().toISOString(),
    ...header,
    ...results,
    versions: { ...(header.versions as object), restic: peerVersions.restic, offen: peerVersions["offen/docker-volume-backup"] },
    load_average_at_end: os.loadavg().map((value) => Math.round(value * 100) / 100),
    targets,
  };
  const resultsFile = path.join(root, "bench", "results.json");
  writeFileSync(resultsFile, `${JSON.stringify(output, null, 2)}\n`);
  const load = (header.machine as { load_average_at_start: number[] }).load_average_at_start[0];
  const cache = coldCache ? "page cache dropped before each timed read" : "warm page cache";
  process.stdout.write(`\ncomposure bench: BENCH_SIZE=${sizeGb} GB on ${os.cpus().length} CPUs, ${cache}, load average ${load} at start${load > os.cpus().length ? " (a busy machine: times are noisy)" : ""}; figures in ${path.relative(process.cwd(), resultsFile) || resultsFile}\n\n`);
  process.stdout.write(formatTable(results, targets));
  // Read back, so a broken file fails the run rather than the next reader.
  JSON.parse(readFileSync(resultsFile, "utf8"));
}

try {
  await main();
} catch (error) {
  process.stderr.write(`make bench failed: ${(error as Error).message}\n`);
  process.exitCode = 1;
} finally {
  await cleanUp();
}

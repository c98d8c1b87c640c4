// The one table `make bench` prints (absolute figures, then the issue's targets with PASS/MISS)
// and the target checks themselves, kept apart from the measuring so they can be read alone.
import type { CassandraFigures } from "./cassandra.ts";
import type { EngineFigures, SlopeFigures } from "./common.ts";
import type { PeerFigures } from "./peers.ts";
import type { PostgresFigures } from "./postgres.ts";
import type { RepositoryFigures } from "./repository.ts";
import type { StackFigures } from "./reference-stack.ts";
import type { OpenSearchFigures } from "./opensearch.ts";
import type { S3Figures } from "./s3.ts";
import type { ScalingFigures } from "./scaling.ts";
import type { VolumeFigures } from "./volume.ts";

export interface Results {
  settings: { size_gb: number; only: string[] };
  volume?: VolumeFigures & { size_gb: number };
  smallfiles?: VolumeFigures & { file_count: number };
  postgres?: PostgresFigures;
  peers?: PeerFigures[];
  repository?: RepositoryFigures;
  s3?: S3Figures;
  scaling?: ScalingFigures;
  /** Targets on the slope only (the rest: figures). */
  cassandra?: CassandraFigures;
  opensearch?: OpenSearchFigures;
  stack?: StackFigures;
  not_measured: Record<string, string>;
}

export type Verdict = "PASS" | "MISS" | "n/a";

export interface Target {
  dataset: string;
  target: string;
  measured: string;
  result: Verdict;
}

const fixed = (value: number, digits = 2) => value.toFixed(digits);
const x = (value: number) => `${fixed(value, 1)}x`;
const s = (value: number) => `${fixed(value)} s`;
const size = (bytes: number) => (bytes >= 1024 ** 3 ? `${fixed(bytes / 1024 ** 3)} GB` : bytes >= 1024 ** 2 ? `${fixed(bytes / 1024 ** 2, 1)} MB` : bytes >= 1024 ? `${fixed(bytes / 1024, 1)} KB` : `${bytes} B`);
const verdict = (ok: boolean): Verdict => (ok ? "PASS" : "MISS");

/** The issue's targets, each with what was measured and PASS/MISS (n/a when it could not be measured). */
export function checkTargets(results: Results): Target[] {
  const targets: Target[] = [];
  const volumeTargets = (name: string, figures: VolumeFigures) => {
    targets.push({ dataset: name, target: "backup >= 8x faster than classic", measured: x(figures.backup_vs_classic), result: verdict(figures.backup_vs_classic >= 8) });
    targets.push({ dataset: name, target: "backup <= 2x raw read", measured: x(figures.backup_vs_raw_read), result: verdict(figures.backup_vs_raw_read <= 2) });
    targets.push({ dataset: name, target: "restore <= 2.5x raw read", measured: x(figures.restore_vs_raw_read), result: verdict(figures.restore_vs_raw_read <= 2.5 && figures.restore_identical) });
    targets.push({ dataset: name, target: "stop-mode downtime <= 1.5x raw read + 3 s", measured: `${s(figures.downtime_s)} (limit ${s(figures.downtime_limit_s)})`, result: verdict(figures.downtime_s <= figures.downtime_limit_s) });
  };
  const { volume, smallfiles, postgres, peers, scaling } = results;
  if (volume) volumeTargets("mixed", volume);
  if (volume && peers) {
    for (const peer of peers.filter((entry) => entry.tool !== "classic")) {
      if (peer.backup_s === undefined) {
        targets.push({ dataset: "mixed", target: `backup faster than ${peer.tool}`, measured: `not measured: ${peer.not_measured ?? "no figure"}`, result: "n/a" });
      } else {
        targets.push({ dataset: "mixed", target: `backup faster than ${peer.tool}`, measured: `${s(volume.backup_s)} vs ${s(peer.backup_s)} (${x(peer.backup_s / volume.backup_s)})`, result: verdict(volume.backup_s < peer.backup_s) });
      }
    }
    const stored = [{ tool: "composure", bytes: volume.stored_bytes }, { tool: "classic", bytes: volume.classic_bytes }, ...peers.filter((peer) => peer.stored_bytes !== undefined).map((peer) => ({ tool: peer.tool, bytes: peer.stored_bytes! }))];
    const smallest = stored.reduce((best, entry) => (entry.bytes < best.bytes ? entry : best));
    const missing = peers.filter((peer) => peer.stored_bytes === undefined).map((peer) => peer.tool);
    targets.push({
      dataset: "mixed",
      target: "stored size within 10% of the smallest",
      measured: `${size(volume.stored_bytes)}; smallest ${smallest.tool} ${size(smallest.bytes)} (+${fixed((volume.stored_bytes / smallest.bytes - 1) * 100, 1)}%)${missing.length ? `; without ${missing.join(", ")}` : ""}`,
      result: verdict(volume.stored_bytes <= smallest.bytes * 1.1),
    });
  }
  if (smallfiles) volumeTargets("small files", smallfiles);
  if (results.repository) repositoryTargets(results.repository, targets);
  if (results.s3) {
    const { upload_s, rclone_upload_s, download_s, rclone_download_s } = results.s3;
    targets.push({ dataset: "s3", target: "upload <= 1.2x rclone copy alone", measured: `${s(upload_s)} vs ${s(rclone_upload_s)} (${x(upload_s / rclone_upload_s)})`, result: verdict(upload_s <= 1.2 * rclone_upload_s) });
    targets.push({ dataset: "s3", target: "download <= 1.2x rclone copy alone", measured: `${s(download_s)} vs ${s(rclone_download_s)} (${x(download_s / rclone_download_s)})`, result: verdict(download_s <= 1.2 * rclone_download_s) });
  }
  if (postgres) {
    targets.push({ dataset: "postgres", target: "dump+compress >= 2x faster than pg_dumpall | gzip", measured: `${s(postgres.dump_compress_s)} vs ${s(postgres.pg_dumpall_gzip_s)} (${x(postgres.dump_vs_pg_dumpall)})`, result: verdict(postgres.dump_vs_pg_dumpall >= 2) });
  }
  if (scaling) {
    const [first, last] = [scaling.steps[0], scaling.steps.at(-1)!];
    targets.push({ dataset: "scaling", target: "backup time linear in size (R² >= 0.95)", measured: `R² ${fixed(scaling.r_squared, 3)}; ${fixed(scaling.fixed_s)} s + ${fixed(scaling.per_gb_s)} s/GB${last.size_gb < 0.5 ? " (below 0.5 GB start-up costs and machine noise dominate)" : ""}`, result: verdict(scaling.r_squared >= 0.95) });
    targets.push({ dataset: "scaling", target: `peak RSS flat ${fixed(first.size_gb, 2)}-${fixed(last.size_gb, 2)} GB (max <= 1.25x min)`, measured: `${fixed(scaling.peak_rss_min_mb, 1)}-${fixed(scaling.peak_rss_max_mb, 1)} MB`, result: verdict(scaling.peak_rss_max_mb <= scaling.peak_rss_min_mb * 1.25 && scaling.peak_rss_max_mb <= 200) });
  }
  if (results.cassandra) slopeTargets("cassandra", results.cassandra, targets);
  if (results.cassandra) medusaTargets(results.cassandra, targets);
  if (results.cassandra) factsTarget(results.cassandra, targets);
  if (results.opensearch) slopeTargets("opensearch", results.opensearch, targets);
  if (results.stack) stackTargets(results.stack, targets);
  const rss = [volume?.peak_rss_mb, smallfiles?.peak_rss_mb, postgres?.peak_rss_mb, scaling?.peak_rss_max_mb].filter((value): value is number => value !== undefined);
  if (rss.length) targets.push({ dataset: "all", target: "peak RSS <= 200 MB", measured: `${fixed(Math.max(...rss), 1)} MB`, result: verdict(Math.max(...rss) <= 200) });
  return targets;
}

/** composure (repository engine) against cassandra-medusa on the same node, first and after 5% new rows. */
function medusaTargets(figures: CassandraFigures, targets: Target[]): void {
  const pairs = [
    { which: "1st", composure: figures.composure_first_s, medusa: figures.medusa_first_s },
    { which: "2nd (after 5% new rows)", composure: figures.composure_second_s, medusa: figures.medusa_second_s },
  ];
  for (const { which, composure, medusa } of pairs) {
    const target = `${which} backup no slower than cassandra-medusa's`;
    if (composure === undefined || medusa === undefined) {
      targets.push({ dataset: "cassandra", target, measured: `medusa not measured: ${figures.medusa_not_measured ?? "no figure"}`, result: "n/a" });
      continue;
    }
    targets.push({ dataset: "cassandra", target, measured: `${s(composure)} (repository engine) vs medusa ${s(medusa)} (${x(composure / medusa)} medusa's)`, result: verdict(composure <= medusa) });
  }
}

function medusaRows(figures: CassandraFigures): Row[] {
  const name = "cassandra";
  if (figures.medusa_first_s === undefined) return [[name, "cassandra-medusa", "-", `not measured: ${figures.medusa_not_measured ?? "no figure"}`, ""]];
  const rows: Row[] = [[name, `cassandra-medusa ${figures.medusa_version}: 1st backup (differential mode, local storage)`, s(figures.medusa_first_s), `stored ${size(figures.medusa_first_bytes ?? 0)}; the whole node (system keyspaces too), run in the node`, ""]];
  if (figures.medusa_second_s === undefined) rows.push([name, "  2nd backup after 5% new rows", "-", `not measured: ${figures.medusa_not_measured ?? "no figure"}`, ""]);
  else rows.push([name, "  2nd backup after 5% new rows", s(figures.medusa_second_s), `${size(figures.medusa_second_added_bytes ?? 0)} added`, ""]);
  return rows;
}

function slopeTargets(name: string, figures: SlopeFigures, targets: Target[]): void {
  const { slope_s_per_gb, raw_slope_s_per_gb, intercept_s } = figures;
  targets.push({ dataset: name, target: "backup slope (0.5x-2x) <= 3x the raw read's", measured: `${fixed(slope_s_per_gb)} vs ${fixed(raw_slope_s_per_gb)} s/GB (${x(slope_s_per_gb / raw_slope_s_per_gb)})`, result: verdict(slope_s_per_gb <= 3 * raw_slope_s_per_gb) });
  targets.push({ dataset: name, target: "backup fixed cost (intercept) <= 15 s", measured: s(intercept_s), result: verdict(intercept_s <= 15) });
}

function slopeRows(name: string, dataset: string, figures: SlopeFigures): Row[] {
  return [
    ...figures.slope_points.map((point): Row => [name, `${point.factor}x: ${dataset} ${size(point.dataset_bytes)}`, s(point.backup_s), `composure backup; raw read ${s(point.raw_read_s)}`, ""]),
    [name, "backup slope (least squares)", `${fixed(figures.slope_s_per_gb)} s/GB`, `raw read ${fixed(figures.raw_slope_s_per_gb)} s/GB; fixed cost ${s(figures.intercept_s)}`, ""],
  ];
}

/** Issue 20: the facts of a 1 GB table cost under 10% of its backup (the 2x table, its first backup). */
function factsTarget(figures: CassandraFigures, targets: Target[]): void {
  const target = "row facts of the 2x table < 10% of its backup time";
  if (figures.facts_s === undefined || figures.facts_backup_s === undefined) {
    targets.push({ dataset: "cassandra", target, measured: "not measured (no storage engines run, or no row facts line in the log)", result: "n/a" });
    return;
  }
  targets.push({ dataset: "cassandra", target, measured: `${s(figures.facts_s)} of ${s(figures.facts_backup_s)} (${fixed((100 * figures.facts_s) / figures.facts_backup_s, 1)}%)`, result: verdict(figures.facts_s < 0.1 * figures.facts_backup_s) });
}

function stackTargets(figures: StackFigures, targets: Target[]): void {
  const { sequential_s, parallel_s, downtime_sequential_s, downtime_parallel_s } = figures;
  // The CPU the sequential run needed, spread over every core, is the least any run can take.
  const floor = figures.machine_cpu_sequential_s / figures.cores / sequential_s;
  targets.push({ dataset: "stack", target: `default parallelism (${figures.parallelism}) <= 0.6x PARALLELISM=1`, measured: `${s(parallel_s)} vs ${s(sequential_s)} (${fixed(parallel_s / sequential_s)}x; its CPU on ${figures.cores} cores: >= ${fixed(floor)}x)`, result: verdict(parallel_s <= 0.6 * sequential_s) });
  const stopMode = Object.keys(downtime_sequential_s);
  if (!stopMode.length) targets.push({ dataset: "stack", target: "stop-mode downtime within 10% of PARALLELISM=1's", measured: "no service was stopped for its capture", result: "n/a" });
  for (const service of stopMode) {
    const [sequential, parallel] = [downtime_sequential_s[service], downtime_parallel_s[service]];
    if (parallel === undefined) {
      targets.push({ dataset: "stack", target: `${service}: stop-mode downtime within 10% of PARALLELISM=1's`, measured: "not stopped in the default run", result: "MISS" });
      continue;
    }
    targets.push({ dataset: "stack", target: `${service}: stop-mode downtime within 10% of PARALLELISM=1's`, measured: `${s(parallel)} vs ${s(sequential)} (${fixed(parallel / sequential)}x)`, result: verdict(parallel <= 1.1 * sequential) });
  }
}

function stackRows(figures: StackFigures): Row[] {
  const list = (values: Record<string, number>, format: (value: number) => string) => Object.entries(values).map(([name, value]) => `${name} ${format(value)}`).join(", ");
  return [
    ["stack", "data (every volume)", size(figures.bytes), `${size(figures.seeded_bytes)} seeded in ${s(figures.load_s)}; ${list(figures.service_bytes, size)}`, ""],
    ["stack", "make backup, PARALLELISM=1", s(figures.sequential_s), `captures: ${list(figures.capture_sequential_s, s)}`, ""],
    ["stack", `make backup, default parallelism (${figures.parallelism})`, s(figures.parallel_s), `${fixed(figures.parallel_s / figures.sequential_s)}x PARALLELISM=1; stored ${size(figures.stored_bytes)}; captures: ${list(figures.capture_parallel_s, s)}`, ""],
    ["stack", "machine CPU busy, PARALLELISM=1 / default", `${s(figures.machine_cpu_sequential_s)} / ${s(figures.machine_cpu_parallel_s)}`, `on ${figures.cores} cores no run is shorter than CPU / cores: ${s(figures.machine_cpu_sequential_s / figures.cores)} / ${s(figures.machine_cpu_parallel_s / figures.cores)}; the idle stack keeps ${fixed(figures.idle_cores_busy)} cores busy`, ""],
    ...Object.entries(figures.downtime_sequential_s).map(([service, sequential]): Row => ["stack", `  ${service}: stop-mode downtime, PARALLELISM=1`, s(sequential), `default parallelism: ${figures.downtime_parallel_s[service] === undefined ? "not stopped" : s(figures.downtime_parallel_s[service])}`, ""]),
  ];
}

function repositoryTargets(figures: RepositoryFigures, targets: Target[]): void {
  const name = "repository";
  const { second_s, restic_second_s, first_s, archive_first_s, peak_rss_mb } = figures;
  targets.push({ dataset: name, target: "unchanged 2nd backup <= restic's 2nd + 0.8 s", measured: `${s(second_s)} vs restic ${s(restic_second_s)} (${second_s < restic_second_s ? "-" : "+"}${s(Math.abs(second_s - restic_second_s))})`, result: verdict(second_s <= restic_second_s + 0.8) });
  targets.push({ dataset: name, target: "unchanged 2nd backup adds < 1% of the 1st", measured: `${size(figures.second_added_bytes)} of ${size(figures.first_bytes)} (${((figures.second_added_bytes / figures.first_bytes) * 100).toPrecision(2)}%)`, result: verdict(figures.second_added_bytes < 0.01 * figures.first_bytes) });
  targets.push({ dataset: name, target: "unchanged 2nd backup: stop-mode downtime <= 1.5 s", measured: s(figures.second_downtime_s), result: verdict(figures.second_downtime_s <= 1.5) });
  targets.push({ dataset: name, target: "1st backup <= 1.3x the archive engine's", measured: `${s(first_s)} vs ${s(archive_first_s)} (${x(first_s / archive_first_s)})`, result: verdict(first_s <= 1.3 * archive_first_s) });
  targets.push({ dataset: name, target: "restore <= 2.5x raw read", measured: `${x(figures.restore_s / figures.raw_read_s)}${figures.restore_identical ? "" : "; RESTORED TREE DIFFERS"}`, result: verdict(figures.restore_s <= 2.5 * figures.raw_read_s && figures.restore_identical) });
  targets.push(
    peak_rss_mb === undefined
      ? { dataset: name, target: "peak RSS (node + restic) <= 300 MB", measured: `not measured: no restic process of the helper seen in /proc (node ${fixed(figures.composure_peak_rss_mb, 1)} MB)`, result: "n/a" }
      : { dataset: name, target: "peak RSS (node + restic) <= 300 MB", measured: `${fixed(peak_rss_mb, 1)} MB (node ${fixed(figures.composure_peak_rss_mb, 1)} + restic ${fixed(figures.restic_peak_rss_mb!, 1)})`, result: verdict(peak_rss_mb <= 300) },
  );
}

type Row = [dataset: string, what: string, value: string, note: string, result: string];

/** How the table names an engine's dataset and its strategy's steps. */
interface EngineWords {
  engine: string;
  dataset: "table" | "index";
  records: "rows" | "documents";
  backup: string;
  restore: string;
}

function repositoryRows(figures: RepositoryFigures): Row[] {
  const name = "repository";
  const added = (bytes: number) => `${size(bytes)} added to the repository`;
  return [
    [name, "data", size(figures.bytes), `${figures.files.toLocaleString("en-US")} files (the mixed volume's mix)`, ""],
    [name, "raw read (busybox tar | cat)", s(figures.raw_read_s), "the limit: every byte read once", ""],
    [name, "composure, archive engine: 1st backup", s(figures.archive_first_s), `stored ${size(figures.archive_first_bytes)}`, ""],
    [name, "composure, repository engine: 1st backup", s(figures.first_s), `${added(figures.first_bytes)}; ${x(figures.first_s / figures.archive_first_s)} the archive engine; downtime ${s(figures.first_downtime_s)}`, ""],
    [name, "  2nd backup, nothing changed", s(figures.second_s), `${added(figures.second_added_bytes)}; downtime ${s(figures.second_downtime_s)}`, ""],
    [name, "  3rd backup, 1% of the files rewritten", s(figures.third_s), `${figures.changed_files} files, ${size(figures.changed_bytes)} rewritten; ${added(figures.third_added_bytes)}`, ""],
    [name, "  restore of the 3rd into the emptied volume", s(figures.restore_s), `${x(figures.restore_s / figures.raw_read_s)} raw read; ${figures.restore_identical ? "same tree back" : "RESTORED TREE DIFFERS"}`, ""],
    [name, "  peak RSS of the 3 backups", figures.peak_rss_mb === undefined ? "-" : `${fixed(figures.peak_rss_mb, 1)} MB`, `node ${fixed(figures.composure_peak_rss_mb, 1)} MB + restic ${figures.restic_peak_rss_mb ?? "?"} MB (VmHWM sampled every 0.1 s)`, ""],
    [name, `restic ${figures.restic_version} alone: 1st backup`, s(figures.restic_first_s), `${added(figures.restic_first_added_bytes)}; peak RSS ${figures.restic_first_peak_rss_mb ?? "?"} MB`, ""],
    [name, "  2nd backup, nothing changed", s(figures.restic_second_s), added(figures.restic_second_added_bytes), ""],
  ];
}

/** One table: every absolute figure, then every target with its verdict. */
export function formatTable(results: Results, targets: Target[]): string {
  const rows: Row[] = [];
  const volumeRows = (name: string, figures: VolumeFigures) => {
    rows.push([name, "data", size(figures.bytes), `${figures.files.toLocaleString("en-US")} files`, ""]);
    rows.push([name, "raw read (busybox tar | cat)", s(figures.raw_read_s), "the limit: every byte read once", ""]);
    rows.push([name, "classic: docker run busybox tar czf", s(figures.classic_s), `stored ${size(figures.classic_bytes)}`, ""]);
    rows.push([name, "composure backup", s(figures.backup_s), `stored ${size(figures.stored_bytes)}; ${x(figures.backup_vs_classic)} faster than classic; ${x(figures.backup_vs_raw_read)} raw read`, ""]);
    rows.push([name, "  stop-mode downtime (manifest)", s(figures.downtime_s), `limit 1.5x raw read + 3 s = ${s(figures.downtime_limit_s)}`, ""]);
    rows.push([name, "  peak RSS / CPU", `${fixed(figures.backup_peak_rss_mb, 1)} MB`, `node ${fixed(figures.backup_cpu_s)} s CPU; with zstd ${figures.backup_tree_cpu_s === undefined ? "?" : fixed(figures.backup_tree_cpu_s)} s, largest process ${figures.backup_tree_peak_rss_mb ?? "?"} MB`, ""]);
    rows.push([name, "composure restore", s(figures.restore_s), `${x(figures.restore_vs_raw_read)} raw read; ${figures.restore_identical ? "same tree back" : "RESTORED TREE DIFFERS"}; node ${fixed(figures.restore_peak_rss_mb, 1)} MB`, ""]);
  };
  const { volume, smallfiles, postgres, peers, scaling } = results;
  if (volume) volumeRows("mixed", volume);
  for (const peer of peers ?? []) {
    if (peer.backup_s === undefined) {
      rows.push(["mixed", peer.tool, "-", `not measured: ${peer.not_measured ?? "no figure"}`, ""]);
      continue;
    }
    const restore = peer.restore_s === undefined ? "" : `; restore ${s(peer.restore_s)}`;
    rows.push(["mixed", `${peer.tool} ${peer.version ?? ""}`.trim(), s(peer.backup_s), `first backup; stored ${size(peer.stored_bytes ?? 0)}${restore}; peak RSS ${peer.backup_peak_rss_mb ?? "?"} MB, CPU ${peer.backup_cpu_s ?? "?"} s${peer.not_measured ? `; ${peer.not_measured}` : ""}`, ""]);
  }
  if (smallfiles) volumeRows("small files", smallfiles);
  if (results.repository) rows.push(...repositoryRows(results.repository));
  if (results.s3) {
    const figures = results.s3;
    rows.push(["s3", "backup run (mixed volume's data)", size(figures.run_bytes), `rclone serve s3 on 127.0.0.1; rclone ${figures.rclone_version ?? "?"}`, ""]);
    rows.push(["s3", "composure upload (make sync)", s(figures.upload_s), `rclone copy alone ${s(figures.rclone_upload_s)}`, ""]);
    rows.push(["s3", "composure download (restore FROM=remote, download step)", s(figures.download_s), `rclone copy alone ${s(figures.rclone_download_s)}`, ""]);
  }
  if (postgres) {
    rows.push(["postgres", "database", size(postgres.database_bytes), `${postgres.rows.toLocaleString("en-US")} orders; data directory ${size(postgres.volume_bytes)}; PostgreSQL ${postgres.server_version}`, ""]);
    rows.push(["postgres", "raw read of the database files", s(postgres.raw_read_s), "the limit: base/ and global/ read once", ""]);
    rows.push(["postgres", "docker exec pg_dumpall | gzip", s(postgres.pg_dumpall_gzip_s), `stored ${size(postgres.pg_dumpall_gzip_bytes)}`, ""]);
    rows.push(["postgres", "composure backup (postgres strategy)", s(postgres.backup_s), `dump+compress ${s(postgres.dump_compress_s)}; stored ${size(postgres.stored_bytes)}; downtime ${s(postgres.downtime_s)} (hot)`, ""]);
    rows.push(["postgres", "  peak RSS / CPU", `${fixed(postgres.backup_peak_rss_mb, 1)} MB`, `node ${fixed(postgres.backup_cpu_s)} s CPU; with zstd ${postgres.backup_tree_cpu_s ?? "?"} s`, ""]);
    rows.push(["postgres", "composure restore (pg_restore --create)", s(postgres.restore_s), postgres.restore_rows_ok ? "row counts match" : "ROW COUNTS DIFFER", ""]);
  }
  if (scaling) {
    for (const step of scaling.steps) {
      rows.push(["scaling", `${step.factor}x: ${size(step.bytes)}`, s(step.backup_s), `${fixed(step.backup_per_gb_s)} s/GB; raw read ${s(step.raw_read_s)}; peak RSS ${fixed(step.peak_rss_mb, 1)} MB (largest process ${step.tree_peak_rss_mb ?? "?"} MB)`, ""]);
    }
  }
  const engineRows = (name: string, words: EngineWords, figures: EngineFigures) => {
    rows.push([name, words.dataset, size(figures.dataset_bytes), `${figures.records.toLocaleString("en-US")} ${words.records}; data directory ${size(figures.data_dir_bytes)}; ${words.engine} ${figures.engine_version}; loaded in ${s(figures.load_s)}`, ""]);
    rows.push([name, "raw read of the data directory", s(figures.raw_read_s), "the limit: every byte read once", ""]);
    rows.push([name, `composure backup (${words.backup})`, s(figures.backup_s), `stored ${size(figures.stored_bytes)}; ${x(figures.backup_vs_raw_read)} raw read; downtime ${s(figures.downtime_s)} (hot)`, ""]);
    rows.push([name, "  peak RSS / CPU", `${fixed(figures.backup_peak_rss_mb, 1)} MB`, `node ${fixed(figures.backup_cpu_s)} s CPU; with zstd ${figures.backup_tree_cpu_s ?? "?"} s, largest process ${figures.backup_tree_peak_rss_mb ?? "?"} MB`, ""]);
    rows.push([name, `composure restore (${words.restore})`, s(figures.restore_s), `${x(figures.restore_vs_raw_read)} raw read; ${figures.restore_records_ok ? `all ${words.records} back` : `${words.records.toUpperCase()} DIFFER`}; node ${fixed(figures.restore_peak_rss_mb, 1)} MB`, ""]);
  };
  if (results.cassandra) {
    const cassandra = results.cassandra;
    engineRows("cassandra", { engine: "Cassandra", dataset: "table", records: "rows", backup: "snapshot over JMX", restore: "TRUNCATE + nodetool import" }, cassandra);
    if (cassandra.restore_new_ring_s) {
      const back = cassandra.restore_new_ring_records_ok ? "all rows back" : "ROWS DIFFER";
      rows.push(["cassandra", "composure restore into a new ring (sstableloader)", s(cassandra.restore_new_ring_s), `${fixed(cassandra.restore_new_ring_s_per_gb)} s/GB against ${fixed(cassandra.restore_s_per_gb)} s/GB through nodetool import; ${back}`, ""]);
    }
    const engines = cassandra.engines;
    if (engines) {
      rows.push(["cassandra", `first backup of the ${size(engines.table_bytes)} table: repository engine`, s(engines.repository_first_s), `${size(engines.repository_first_added_bytes)} added; archive engine ${s(engines.archive_first_s)}, ${size(engines.archive_first_bytes)}`, ""]);
      rows.push(["cassandra", "second backup after 5% new rows: repository engine", s(engines.repository_second_s), `${size(engines.repository_second_added_bytes)} added; archive engine ${s(engines.archive_second_s)}, ${size(engines.archive_second_bytes)}`, ""]);
    }
    rows.push(...medusaRows(cassandra));
  }
  if (results.cassandra) rows.push(...slopeRows("cassandra", "table", results.cassandra));
  if (results.opensearch) {
    engineRows("opensearch", { engine: "OpenSearch", dataset: "index", records: "documents", backup: "fs repository snapshot", restore: "snapshot restore" }, results.opensearch);
    rows.push(...slopeRows("opensearch", "index", results.opensearch));
  }
  if (results.stack) rows.push(...stackRows(results.stack));
  for (const [name, reason] of Object.entries(results.not_measured)) rows.push([name, "-", "-", `not measured: ${reason}`, ""]);
  for (const target of targets) rows.push([target.dataset, `target: ${target.target}`, "", target.measured, target.result]);

  const header: Row = ["dataset", "what", "value", "ratio / note", "result"];
  const widths = [0, 1, 2].map((column) => Math.max(header[column].length, ...rows.map((row) => row[column].length)));
  const line = (row: Row) => `${row[0].padEnd(widths[0])}  ${row[1].padEnd(widths[1])}  ${row[2].padStart(widths[2])}  ${row[4].padEnd(4)}  ${row[3]}`.trimEnd();
  const out = [line(header), line(["-".repeat(widths[0]), "-".repeat(widths[1]), "-".repeat(widths[2]), "-".repeat(12), "----"])];
  let previous = "";
  for (const row of rows) {
    if (previous && row[0] !== previous) out.push("");
    out.push(line(row));
    previous = row[0];
  }
  return `${out.join("\n")}\n`;
}

// The `sqlite` strategy: consistent copies of SQLite database files that live in a service's
// volumes, taken while the service runs. Never auto-detected: name the files with
// `composure.sqlite.paths` (container paths, e.g. /data/app.db, inside the service's mounts).
//
// Backup: `VACUUM INTO` (one read transaction: a consistent snapshot even under constant writes,
// and WAL content included; `.backup` where SQLite is older than 3.27) into a temporary file,
// `PRAGMA quick_check` and per-table row counts on that copy, then the copy streams out with
// `cat` through docker exec into zstd on the host. A live file is never copied raw with its WAL.
// sqlite3 runs inside the service's container when its image has it; otherwise in a helper of
// `composure.sqlite.image` (an image with sqlite3 and sleep) that mounts the service's volumes
// at the same paths. The default helper image (busybox) has no sqlite3.
// Restore: a rescue copy of the current files first (taken the same way, while the service still
// runs), then the service (and what depends on it) is stopped, each file is replaced (its stale
// -wal, -shm and -journal removed, owner and mode kept), and the service is started again.
import { randomUUID } from "node:crypto";
import path from "node:path";
import { z } from "zod";
import { dumpToStore, loadFromStore } from "../../store/exec-stream.ts";
import type { ArtifactStore } from "../../store/types.ts";
import type { Artifact } from "../../catalog/manifest.ts";
import type { ProjectInfo, ServiceInfo } from "../../compose/discover.ts";
import type { MountInfo } from "../../docker/containers.ts";
import { startHelper } from "../../docker/helper.ts";
import { StepError } from "../../errors.ts";
import { formatSeconds, log } from "../../log.ts";
import { containersToStop, stopContainers } from "../../lifecycle/stopper.ts";
import type { ProbeResult, RestoreContext, Strategy, ProbeContext } from "../types.ts";
import {
  artifactBaseName,
  compareTableFacts,
  formatCount,
  splitList,
  maxCountedTables,
  runTool,
  tableFacts,
  ToolMissingError,
  type TableFacts,
  type ToolResult,
} from "../shared/in-container.ts";
import { hotSession } from "../shared/session.ts";

const containerPath = z
  .string()
  .refine((value) => value.startsWith("/") && !value.split("/").includes(".."), "expected an absolute path inside the container, e.g. /data/app.db");

export const sqliteOptions = z
  .object({
    /** Database files, as paths inside the service's container (in its volumes or bind mounts). */
    paths: z.preprocess(splitList, z.array(containerPath).min(1, "give at least one database file")),
    /** A helper image with sqlite3 (and sleep), for services whose own image has no sqlite3. */
    image: z.string().min(1).optional(),
  })
  .strict();

export type SqliteOptions = z.infer<typeof sqliteOptions>;

// ---------------------------------------------------------------------------------------------
// Where sqlite3 runs

interface Runner {
  id: string;
  /** "the service's container" or "a helper of <image>", for messages. */
  where: string;
  run(argv: string[], timeoutMs?: number): Promise<ToolResult>;
  remove(): Promise<void>;
}

/** The mount of the service that holds `file` (the deepest one), if any. */
export function mountFor(mounts: MountInfo[], file: string): MountInfo | undefined {
  return mounts
    .filter((mount) => file === mount.destination || file.startsWith(`${mount.destination.replace(/\/$/, "")}/`))
    .sort((a, b) => b.destination.length - a.destination.length)[0];
}

const mountsOf = (service: ServiceInfo) => service.containers[0]?.mounts ?? [];

const noSqliteHint =
  `set composure.sqlite.image to an image that has sqlite3 and sleep (it runs as a helper with the service's volumes mounted at the same paths); the default helper image (busybox) has no sqlite3`;

async function openRunner(service: ServiceInfo, project: ProjectInfo, options: { image?: string }): Promise<Runner> {
  const container = service.containers.find((candidate) => candidate.running);
  if (container) {
    try {
      await runTool(container, ["sqlite3", "-version"], { timeoutMs: 30_000 });
      return { id: container.id, where: "the service's container", run: (argv, timeoutMs) => runTool(container, argv, { timeoutMs: timeoutMs ?? 0 }), remove: async () => undefined };
    } catch (error) {
      if (!(error instanceof ToolMissingError)) throw error;
    }
  }
  // A stopped service's own image may have sqlite3 (a drill leaves its copy stopped).
  const image = options.image ?? (container ? undefined : service.image);
  if (!image) {
    throw new Error(`sqlite3 is not in the image ${service.image}: ${noSqliteHint}`);
  }
  const binds = [...new Map(mountsOf(service).map((mount) => [mount.destination, `${mount.source}:${mount.destination}${mount.readOnly ? ":ro" : ""}`])).values()];
  const helper = await startHelper({ image, project: project.name, binds });
  const runner: Runner = {
    id: helper.id,
    where: `a helper of ${image}`,
    run: async (argv, timeoutMs) => {
      const result = await helper.run(argv, { timeoutMs: timeoutMs ?? 0 });
      if (result.exitCode === 126 || result.exitCode === 127) throw new ToolMissingError(argv[0], image);
      return result;
    },
    remove: () => helper.remove(),
  };
  try {
    await runner.run(["sqlite3", "-version"], 30_000);
  } catch (error) {
    await runner.remove();
    const named = options.image ? `the image ${image} named by composure.sqlite.image` : `the image ${image} (no container of the service is running)`;
    throw error instanceof ToolMissingError ? new Error(`${named} has no sqlite3 (or no sleep): ${noSqliteHint}`) : error;
  }
  return runner;
}

/** A URI that opens an existing database read-write and never creates one. */
export function sqliteUri(file: string): string {
  return `file:${file.replace(/%/g, "%25").replace(/\?/g, "%3f").replace(/#/g, "%23")}?mode=rw`;
}

const quoteText = (text: string) => `'${text.replace(/'/g, "''")}'`;
const quoteName = (name: string) => `"${name.replace(/"/g, '""')}"`;

async function sqlite(runner: Runner, database: string, statements: string[], timeoutMs = 0): Promise<string> {
  const result = await runner.run(["sqlite3", "-batch", "-bail", "-cmd", ".timeout 30000", database, ...statements], timeoutMs);
  if (result.exitCode !== 0) throw new Error((result.stderr.trim() || result.stdout.trim() || `sqlite3 exited with ${result.exitCode}`).replace(/^Error: /, ""));
  return result.stdout;
}

const listTablesSql = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name;";

async function fileFacts(runner: Runner, database: string): Promise<TableFacts> {
  const tables = (await sqlite(runner, database, [listTablesSql], 120_000)).split("\n").filter(Boolean);
  return countRows(runner, database, tables);
}

/** Exact row counts of (at most maxCountedTables of) `tables`, in one statement. */
async function countRows(runner: Runner, database: string, tables: string[]): Promise<TableFacts> {
  const counted = tables.slice(0, maxCountedTables);
  const counts: Record<string, number> = {};
  if (counted.length) {
    const query = `${counted.map((table, index) => `SELECT ${index}, count(*) FROM ${quoteName(table)}`).join(" UNION ALL ")};`;
    for (const line of (await sqlite(runner, database, [query], 600_000)).split("\n").filter(Boolean)) {
      const [index, count] = line.split("|");
      counts[counted[Number(index)]] = Number(count);
    }
  }
  return tableFacts(counts, tables.length);
}

// ---------------------------------------------------------------------------------------------
// Capture

async function captureFile(runner: Runner, service: string, file: string, store: ArtifactStore, name: string): Promise<Artifact> {
  const started = performance.now();
  const uri = sqliteUri(file);
  const copy = `/tmp/composure-${randomUUID()}.sqlite`;
  try {
    let journalMode: string;
    try {
      journalMode = (await sqlite(runner, uri, ["PRAGMA journal_mode;", `VACUUM INTO ${quoteText(copy)};`])).trim();
    } catch (error) {
      const message = (error as Error).message;
      if (/unable to open database/i.test(message)) throw new Error(`database file ${file} does not exist (or cannot be opened) in ${runner.where}`);
      if (!/syntax error/i.test(message)) throw error;
      journalMode = (await sqlite(runner, uri, ["PRAGMA journal_mode;", `.backup ${copy}`])).trim(); // SQLite before 3.27: the online backup API
    }
    // VACUUM INTO writes a rollback-journal database: give the copy the source's WAL mode back.
    // Then, in the same run: check the copy, and list its tables.
    const output = await sqlite(runner, copy, [
      ...(journalMode === "wal" ? ["PRAGMA journal_mode = WAL;"] : []),
      "SELECT '#check';",
      "PRAGMA quick_check;",
      "SELECT '#version|' || sqlite_version();",
      listTablesSql,
    ]);
    const lines = output.split("\n").filter(Boolean);
    const checkAt = lines.indexOf("#check");
    const versionAt = lines.findIndex((line) => line.startsWith("#version|"));
    const check = lines.slice(checkAt + 1, versionAt).join("; ");
    if (checkAt < 0 || versionAt < 0 || check !== "ok") throw new Error(`the copy of ${file} fails PRAGMA quick_check: ${check.slice(0, 300) || output.slice(0, 300)}`);
    const version = lines[versionAt].slice("#version|".length);
    const facts = await countRows(runner, copy, lines.slice(versionAt + 1));
    const owner = await runner.run(["stat", "-c", "%u %g %a", file], 30_000).catch(() => undefined);
    const [uid, gid, mode] = owner?.exitCode === 0 ? owner.stdout.trim().split(" ") : [];
    const stored = await dumpToStore(store, name, runner.id, ["cat", copy], { label: `${service}: ${file}` });
    log.info(`${service}: ${file}: ${facts.tables} tables, ${formatCount(facts.rows)} rows copied in ${formatSeconds((performance.now() - started) / 1000)} (sqlite3 in ${runner.where})`);
    return {
      ...stored,
      facts: { kind: "sqlite", database: file, journalMode, sqliteVersion: version, ...(uid ? { owner: { uid: Number(uid), gid: Number(gid), mode } } : {}), ...facts },
    };
  } finally {
    await runner.run(["rm", "-f", copy, `${copy}-wal`, `${copy}-shm`, `${copy}-journal`], 60_000).catch(() => undefined);
  }
}

async function captureFiles(runner: Runner, service: string, files: string[], store: ArtifactStore): Promise<Artifact[]> {
  const artifacts: Artifact[] = [];
  const used = new Set<string>();
  for (const file of files) {
    let base = artifactBaseName(path.posix.basename(file));
    if (used.has(base)) base = artifactBaseName(file.replace(/^\/+/, "").replace(/\//g, "_"));
    while (used.has(base)) base = `${base}_`;
    used.add(base);
    artifacts.push(await captureFile(runner, service, file, store, `${base}.sqlite`));
  }
  return artifacts;
}

function checkPaths(service: ServiceInfo, files: string[]): void {
  const outside = files.filter((file) => !mountFor(mountsOf(service), file));
  if (outside.length) {
    const mounts = mountsOf(service).map((mount) => mount.destination);
    throw new Error(`${outside.join(", ")} ${outside.length > 1 ? "are" : "is"} not inside a volume or bind mount of the service (its mounts: ${mounts.join(", ") || "none"}): composure.sqlite.paths must name files in the service's mounts`);
  }
}

function asStepError(phase: string, service: ServiceInfo | string, error: unknown): Error {
  if (error instanceof StepError) return error;
  const name = typeof service === "string" ? service : service.name;
  return new StepError(phase, name, error);
}

// ---------------------------------------------------------------------------------------------
// Restore

/** Writes stdin next to the file, keeps owner and mode, drops the stale -wal/-shm/-journal, swaps it in. */
const replaceScript = `set -e
target=$1
if [ "$5" = inplace ]; then staged=$target; else staged="$1.composure-restore"; trap 'rm -f "$staged"' EXIT; fi
mkdir -p "$(dirname "$target")"
cat > "$staged"
if [ -n "$2" ]; then chown "$2:$3" "$staged"; chmod "$4" "$staged"; fi
rm -f "$target-wal" "$target-shm" "$target-journal"
if [ "$staged" != "$target" ]; then mv -f "$staged" "$target"; fi
trap - EXIT`;

interface Target {
  artifact: Artifact;
  file: string;
  mount: MountInfo;
}

function targetsOf(ctx: RestoreContext<unknown>, service: ServiceInfo, artifacts: Artifact[]): Target[] {
  return artifacts.map((artifact) => {
    const file = artifact.facts?.database;
    if (artifact.facts?.kind !== "sqlite" || typeof file !== "string") throw new Error(`artifact ${artifact.path} is not a sqlite copy composure knows`);
    const mount = mountFor(mountsOf(service), file);
    if (!mount) throw new Error(`${file} is not inside a mount of service ${ctx.serviceName} any more: restore it by hand from ${artifact.path}`);
    return { artifact, file, mount };
  });
}

async function keepRescueCopies(ctx: RestoreContext<unknown>, service: ServiceInfo, options: { image?: string }, targets: Target[]): Promise<void> {
  let runner: Runner;
  try {
    runner = await openRunner(service, ctx.project, options);
  } catch (error) {
    throw new Error(`cannot keep a rescue copy of the files about to be replaced: ${(error as Error).message} (or restore with NO_RESCUE=1)`);
  }
  try {
    const store = await ctx.rescue!.store(ctx.serviceName);
    for (const target of targets) {
      try {
        const [artifact] = await captureFiles(runner, ctx.serviceName, [target.file], store);
        ctx.rescue!.add(ctx.serviceName, artifact, "sqlite");
      } catch (error) {
        if (!/does not exist/.test((error as Error).message)) throw error;
        log.info(`${ctx.serviceName}: ${target.file} does not exist yet: no rescue copy needed`);
      }
    }
  } finally {
    await runner.remove();
  }
}

function parseOptions(raw: unknown): { image?: string } {
  const image = (raw as { image?: unknown } | undefined)?.image;
  return typeof image === "string" && image ? { image } : {};
}

export const sqliteStrategy: Strategy<SqliteOptions> = {
  kind: "sqlite",
  offline: true,
  options: sqliteOptions,

  async openSession(ctx) {
    // Hot: nothing stops; VACUUM INTO reads one consistent snapshot while the app writes.
    try {
      checkPaths(ctx.service, ctx.options.paths);
    } catch (error) {
      throw asStepError("prepare", ctx.service, error);
    }
    return hotSession(async () => {
      let runner: Runner | undefined;
      try {
        runner = await openRunner(ctx.service, ctx.project, ctx.options);
        return await captureFiles(runner, ctx.service.name, ctx.options.paths, ctx.store);
      } catch (error) {
        throw asStepError("capture", ctx.service, error);
      } finally {
        await runner?.remove();
      }
    });
  },

  async restore(ctx, artifacts) {
    const service = ctx.service;
    if (!service) throw new StepError("restore", ctx.serviceName, new Error(`service ${ctx.serviceName} has no container in project ${ctx.project.name}`), `create it first (docker compose up -d ${ctx.serviceName}), then restore again`);
    try {
      const options = parseOptions(ctx.options);
      const targets = targetsOf(ctx, service, artifacts);
      const toStop = containersToStop(ctx.project, [ctx.serviceName]);
      const stopping = toStop.map((container) => container.name).join(", ") || "nothing (not running)";
      if (ctx.dryRun) {
        return targets.map(({ artifact, file, mount }) => {
          const facts = artifact.facts as Partial<TableFacts>;
          return `would replace ${file} (in ${mount.type} ${mount.source}) with ${artifact.path} (${facts.tables ?? "?"} tables, ${formatCount(facts.rows ?? 0)} rows): stop ${stopping}, remove its -wal and -shm, start again${ctx.rescue ? "; rescue copy first" : ""}`;
        });
      }
      await ctx.reader.check(targets.map(({ artifact }) => artifact));
      if (ctx.rescue) await keepRescueCopies(ctx, service, options, targets);
      const binds = [...new Map(targets.map(({ mount }) => [mount.destination, `${mount.source}:${mount.destination}`])).values()];
      const stoppage = await stopContainers(toStop, ctx.journal, ctx.config.stop_timeout_seconds);
      const done: string[] = [];
      try {
        const helper = await startHelper({ image: ctx.helperImage, project: ctx.project.name, binds });
        try {
          for (const { artifact, file, mount } of targets) {
            const owner = artifact.facts?.owner as { uid?: number; gid?: number; mode?: string } | undefined;
            const ownerArgs = owner?.uid !== undefined && /^[0-7]{3,4}$/.test(owner.mode ?? "") ? [String(owner.uid), String(owner.gid), owner.mode!] : ["", "", ""];
            await loadFromStore(ctx.reader.read(artifact), helper.id, ["sh", "-c", replaceScript, "sh", file, ...ownerArgs, mount.destination === file ? "inplace" : "staged"], { label: `${ctx.serviceName}: ${file}` });
            const facts = artifact.facts as Partial<TableFacts>;
            done.push(`replaced ${file} with ${artifact.path} (${facts.tables ?? "?"} tables, ${formatCount(facts.rows ?? 0)} rows)`);
          }
        } finally {
          await helper.remove();
        }
      } finally {
        await stoppage.release();
      }
      if (stoppage.stopped.length) done.push(`stopped ${stoppage.stopped.map((container) => container.name).join(", ")} for ${stoppage.downtimeSeconds().toFixed(1)} s`);
      return done;
    } catch (error) {
      throw asStepError("restore", ctx.serviceName, error);
    }
  },

  async probe(ctx, recorded) {
    return probeSqlite(ctx, recorded);
  },
};

async function probeSqlite(ctx: ProbeContext<SqliteOptions>, recorded?: Artifact[]): Promise<ProbeResult> {
  const expected = (recorded ?? []).filter((artifact) => artifact.facts?.kind === "sqlite");
  const files = recorded ? expected.map((artifact) => artifact.facts!.database as string) : ctx.options.paths;
  const runner = await openRunner(ctx.service, ctx.project, ctx.options);
  try {
    const databases: Record<string, TableFacts | null> = {};
    const differences: string[] = [];
    for (const file of files) {
      databases[file] = await fileFacts(runner, sqliteUri(file)).catch(() => null);
      const artifact = expected.find((candidate) => candidate.facts!.database === file);
      if (artifact) differences.push(...compareTableFacts(file, artifact.facts as Partial<TableFacts>, databases[file] ?? undefined));
    }
    const recordedFacts = recorded ? Object.fromEntries(expected.map((artifact) => [artifact.facts!.database as string, artifact.facts])) : undefined;
    return { ok: differences.length === 0 && Object.values(databases).every(Boolean), differences, facts: { databases, ...(recorded ? { recorded: recordedFacts, differences } : {}) } };
  } finally {
    await runner.remove();
  }
}

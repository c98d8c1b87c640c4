// The `redis` strategy: a hot, point-in-time copy through BGSAVE. Writes are held for the
// instant of the fork (CLIENT PAUSE WRITE, Redis >= 6.2), so the key count recorded is exactly
// what the RDB holds; the RDB (and the append-only files, when AOF is on) is then archived from
// the data volume through a read-only helper. If another save replaces the RDB while it is being
// archived, the copy is taken again.
//
// Restore stops the service, puts the RDB back and, when AOF is on, rebuilds the append-only
// files from it (Redis 7 loads only the AOF when it is on: a base file plus a manifest; older
// versions load an RDB-preamble appendonly.aof), starts the service and checks the key counts.
import { z } from "zod";
import type { Artifact } from "../../catalog/manifest.ts";
import type { ServiceInfo } from "../../compose/discover.ts";
import type { SelectedMount } from "../../compose/mounts.ts";
import { shellQuote, writeScript } from "../../archive/tar-transfer.ts";
import type { ExtractTree } from "../../store/types.ts";
import { createVolume, inspectVolume } from "../../docker/volumes.ts";
import { log } from "../../log.ts";
import { containersToStop, stopContainers } from "../../lifecycle/stopper.ts";
import type { RestoreContext, Strategy } from "../types.ts";
import { withHelper } from "../../docker/helper.ts";
import { captureMounts } from "../shared/mount-capture.ts";
import { hotSession } from "../shared/session.ts";
import { archiveBaseName, helperPath, imageNamed, locateDataPath, requireDataLocation, requireRunningContainer, runningContainer, volumeFactsOf, type DataLocation } from "../shared/service-data.ts";
import { bgsaveReply, compareKeyspaces, parseConfigGet, parseInfo, parseKeyspace, redisCli, RedisError, redisTarget, totalExpires, totalKeys, type Keyspace, type RedisTarget } from "./cli.ts";

const options = z
  .object({
    /** Variable of the service container's environment that holds the password (sent as REDISCLI_AUTH). */
    password_env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "give the name of an environment variable").default("REDIS_PASSWORD"),
    /** Port Redis listens on inside its container. */
    port: z.coerce.number().int().min(1).max(65_535).default(6379),
    /** Seconds BGSAVE may take. */
    timeout: z.coerce.number().int().positive().max(86_400).default(600),
  })
  .strict();

export type RedisOptions = z.infer<typeof options>;

/** redis, redis:7, bitnami/redis, composure-fixture/redis ... */
export function isRedisImage(image: string): boolean {
  return imageNamed(image, ["redis"]);
}

interface PersistenceConfig {
  version: string;
  dir: string;
  dbfilename: string;
  aof: boolean;
  /** Redis >= 7: the directory of the multi-part AOF; undefined before. */
  appenddirname?: string;
  appendfilename: string;
}

/** Recorded in artifact.facts. */
export interface RedisFacts extends PersistenceConfig {
  kind: "redis-rdb";
  subpath: string;
  /** Keys per database at the fork of the BGSAVE (what the RDB holds). */
  keyspace: Keyspace;
  keys: number;
  expires: number;
  /** False when writes could not be held for the fork (Redis < 6.2): then the counts are approximate. */
  keysExact: boolean;
  usedMemory?: number;
  usedMemoryHuman?: string;
  lastSave: number;
  takenAt: string;
  /** What the archive holds, relative to dir. */
  files: string[];
}

const stagingName = ".composure-restore";
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function readPersistenceConfig(target: RedisTarget): Promise<PersistenceConfig> {
  const info = parseInfo(await redisCli(target, ["INFO", "server"]));
  const persistence = parseInfo(await redisCli(target, ["INFO", "persistence"]));
  const config: PersistenceConfig = {
    version: info.redis_version ?? "unknown",
    dir: "/data",
    dbfilename: "dump.rdb",
    aof: persistence.aof_enabled === "1",
    appenddirname: Number(info.redis_version?.split(".")[0]) >= 7 ? "appendonlydir" : undefined,
    appendfilename: "appendonly.aof",
  };
  try {
    const settings = parseConfigGet(await redisCli(target, ["CONFIG", "GET", "*"], { timeoutMs: 30_000 }));
    config.dir = settings.dir || config.dir;
    config.dbfilename = settings.dbfilename || config.dbfilename;
    config.appendfilename = settings.appendfilename || config.appendfilename;
    config.appenddirname = settings.appenddirname || config.appenddirname;
    if (settings.appendonly) config.aof = settings.appendonly === "yes";
  } catch (error) {
    if (error instanceof RedisError && /auth|password/i.test(error.message)) throw error;
    log.warn(`${target.service}: CONFIG GET is not allowed (${(error as Error).message}): assuming dir ${config.dir}, dbfilename ${config.dbfilename}`);
  }
  for (const name of [config.dbfilename, config.appendfilename, config.appenddirname]) {
    if (name !== undefined && (!/^[^/\0]+$/.test(name) || name === "." || name === "..")) throw new Error(`unexpected Redis file name ${JSON.stringify(name)} in service ${target.service}`);
  }
  return config;
}

interface SaveMarker {
  saves?: number;
  lastSave: number;
}

function markerOf(persistence: Record<string, string>): SaveMarker {
  return { saves: persistence.rdb_saves === undefined ? undefined : Number(persistence.rdb_saves), lastSave: Number(persistence.rdb_last_save_time) };
}

/** Waits until no BGSAVE and no AOF rewrite runs; returns the persistence fields then. */
async function waitForNoChild(target: RedisTarget, deadline: number, timeoutSeconds: number): Promise<Record<string, string>> {
  for (;;) {
    const persistence = parseInfo(await redisCli(target, ["INFO", "persistence"]));
    if (persistence.rdb_bgsave_in_progress !== "1" && persistence.aof_rewrite_in_progress !== "1") return persistence;
    if (Date.now() > deadline) {
      throw new Error(
        `BGSAVE of service ${target.service} did not finish within ${timeoutSeconds} s ` +
          `(rdb_bgsave_in_progress:${persistence.rdb_bgsave_in_progress}, aof_rewrite_in_progress:${persistence.aof_rewrite_in_progress}): ` +
          `raise composure.redis.timeout, or look at the Redis log for a stuck save`,
      );
    }
    await sleep(100);
  }
}

interface SaveResult {
  keyspace: Keyspace;
  keysExact: boolean;
  marker: SaveMarker;
}

/**
 * BGSAVE with writes held for the fork: the keyspace counted in the same breath is what the RDB
 * holds. Waits for the save to end (LASTSAVE moved, rdb_bgsave_in_progress:0) and checks it
 * succeeded.
 */
async function bgsave(target: RedisTarget, timeoutSeconds: number): Promise<SaveResult> {
  const deadline = Date.now() + timeoutSeconds * 1000;
  for (let attempt = 1; ; attempt++) {
    const before = markerOf(await waitForNoChild(target, deadline, timeoutSeconds));
    // LASTSAVE counts seconds: without rdb_saves (Redis < 7), make sure ours moves it.
    if (before.saves === undefined && Math.floor(Date.now() / 1000) <= before.lastSave + 1) await sleep(1100);
    const output = await redisCli(target, [], { script: ["CLIENT PAUSE 30000 WRITE", "INFO keyspace", "BGSAVE", "CLIENT UNPAUSE"] });
    const paused = output.replace(/\r/g, "").split("\n")[0] === "OK";
    const reply = bgsaveReply(output) ?? output.trim();
    if (!paused) await redisCli(target, [], { script: ["CLIENT UNPAUSE"] }).catch(() => undefined);
    if (!/^Background saving started/.test(reply)) {
      if (/in progress|rewriting|scheduled/i.test(reply) && attempt < 5 && Date.now() < deadline) continue;
      throw new Error(`Redis of service ${target.service} did not start a BGSAVE: ${reply}`);
    }
    const keyspace = parseKeyspace(output);
    for (;;) {
      const persistence = parseInfo(await redisCli(target, ["INFO", "persistence"]));
      const now = markerOf(persistence);
      const moved = now.saves !== undefined && before.saves !== undefined ? now.saves > before.saves : now.lastSave > before.lastSave;
      if (persistence.rdb_bgsave_in_progress !== "1" && moved) {
        if (persistence.rdb_last_bgsave_status !== "ok") {
          throw new Error(`BGSAVE of service ${target.service} failed (rdb_last_bgsave_status:${persistence.rdb_last_bgsave_status}): see the Redis log (disk full? permissions of its data directory?)`);
        }
        // Another save finished right after ours: the file on disk may be that one. Again.
        if (now.saves !== undefined && before.saves !== undefined && now.saves !== before.saves + 1) break;
        return { keyspace, keysExact: paused, marker: now };
      }
      if (persistence.rdb_bgsave_in_progress !== "1" && persistence.rdb_last_bgsave_status === "err" && !moved) {
        throw new Error(`BGSAVE of service ${target.service} failed (rdb_last_bgsave_status:err): see the Redis log (disk full? permissions?)`);
      }
      if (Date.now() > deadline) {
        throw new Error(`BGSAVE of service ${target.service} did not finish within ${timeoutSeconds} s (LASTSAVE did not move, rdb_bgsave_in_progress:${persistence.rdb_bgsave_in_progress}): raise composure.redis.timeout, or look at the Redis log`);
      }
      await sleep(100);
    }
    if (attempt >= 5) throw new Error(`Redis of service ${target.service} kept saving over our BGSAVE: too many automatic saves (see its save setting)`);
  }
}

function targetFor(service: ServiceInfo, options: RedisOptions): RedisTarget {
  const container = requireRunningContainer(service, "a Redis BGSAVE");
  return redisTarget(service.name, container, options.port, options.password_env);
}

export const redisStrategy: Strategy<RedisOptions> = {
  kind: "redis",
  options,

  detect(service) {
    return isRedisImage(service.image);
  },

  async openSession(ctx) {
    const target = targetFor(ctx.service, ctx.options);
    const container = requireRunningContainer(ctx.service, "a Redis BGSAVE");
    const config = await readPersistenceConfig(target);
    const location = requireDataLocation(ctx.service, container, config.dir, "the Redis dir setting");
    // Nothing stopped, nothing left behind.
    return hotSession(async () => {
      const volume = await volumeFactsOf(location.mount, ctx.project.name);
      for (let attempt = 1; attempt <= 3; attempt++) {
        const save = await bgsave(target, ctx.options.timeout);
        const takenAt = new Date().toISOString();
        const memory = parseInfo(await redisCli(target, ["INFO", "memory"]));
        const { stored, files } = await withHelper(ctx.helperImage, ctx.project.name, [`${location.mount.source}:/v:ro`], async (helper, pipe) => {
          const dir = helperPath("/v", location.subpath);
          const candidates = [config.dbfilename, ...(config.aof ? [config.appenddirname ?? config.appendfilename] : [])];
          const present = await helper.run(["sh", "-c", 'cd "$1" && shift && for f in "$@"; do [ -e "$f" ] && echo "$f"; done; true', "sh", dir, ...candidates]);
          const files = present.stdout.split("\n").filter((name) => candidates.includes(name));
          if (!files.includes(config.dbfilename)) throw new Error(`BGSAVE of service ${ctx.service.name} succeeded but ${config.dir}/${config.dbfilename} is not on volume ${location.mount.source}`);
          const stored = await ctx.store.putTree(`${archiveBaseName(volume)}-redis`, { helper, pipe, dir, entries: files }, `${ctx.service.name} ${files.join(" + ")}`);
          return { stored, files };
        });
        const after = markerOf(await waitForNoChild(target, Date.now() + ctx.options.timeout * 1000, ctx.options.timeout));
        if (after.lastSave !== save.marker.lastSave || after.saves !== save.marker.saves) {
          log.warn(`${ctx.service.name}: another save replaced ${config.dbfilename} while it was archived: taking the copy again`);
          continue;
        }
        const facts: RedisFacts = {
          kind: "redis-rdb",
          ...config,
          subpath: location.subpath,
          keyspace: save.keyspace,
          keys: totalKeys(save.keyspace),
          expires: totalExpires(save.keyspace),
          keysExact: save.keysExact,
          usedMemory: memory.used_memory === undefined ? undefined : Number(memory.used_memory),
          usedMemoryHuman: memory.used_memory_human,
          lastSave: save.marker.lastSave,
          takenAt,
          files,
        };
        if (!save.keysExact) log.warn(`${ctx.service.name}: writes could not be paused for the fork (Redis ${config.version} < 6.2?): the recorded key count is approximate`);
        log.info(`${ctx.service.name}: RDB of ${facts.keys} keys (${facts.usedMemoryHuman ?? "?"} in memory) archived${files.length > 1 ? ` with ${files.slice(1).join(", ")}` : ""}`);
        return [{ ...stored, volume, facts: facts as unknown as Record<string, unknown> }];
      }
      throw new Error(`the RDB of service ${ctx.service.name} was replaced by automatic saves during three copies in a row: retry, or relax its save setting`);
    });
  },

  async restore(ctx, artifacts) {
    const done: string[] = [];
    for (const artifact of artifacts) done.push(await restoreArtifact(ctx, artifact));
    return done;
  },

  async probe(ctx, recorded) {
    const container = runningContainer(ctx.service);
    if (!container) {
      const error = `service ${ctx.service.name} has no running container`;
      return { ok: false, differences: [error], facts: { error } };
    }
    const target = redisTarget(ctx.service.name, container, ctx.options.port, ctx.options.password_env);
    try {
      const live = await readLiveFacts(target);
      let ok = (await redisCli(target, ["PING"])).trim() === "PONG";
      const facts: Record<string, unknown> = { ...live };
      const differences: string[] = [];
      for (const artifact of recorded ?? []) {
        const saved = artifact.facts?.kind === "redis-rdb" ? (artifact.facts as unknown as RedisFacts) : undefined;
        if (!saved) continue;
        const problems = compareKeyspaces(saved.keyspace, live.keyspace);
        facts.recorded = { keys: saved.keys, takenAt: saved.takenAt, matches: problems.length === 0, problems };
        differences.push(...problems);
        ok &&= problems.length === 0;
      }
      return { ok, differences, facts };
    } catch (error) {
      const message = (error as Error).message;
      return { ok: false, differences: [message], facts: { error: message } };
    }
  },
};

async function readLiveFacts(target: RedisTarget) {
  const keyspace = parseKeyspace(await redisCli(target, ["INFO", "keyspace"]));
  const memory = parseInfo(await redisCli(target, ["INFO", "memory"]));
  return { keyspace, keys: totalKeys(keyspace), usedMemory: Number(memory.used_memory), usedMemoryHuman: memory.used_memory_human };
}

function redisFactsOf(artifact: Artifact): RedisFacts {
  const facts = artifact.facts as Partial<RedisFacts> | undefined;
  if (!facts || facts.kind !== "redis-rdb" || typeof facts.dir !== "string" || typeof facts.dbfilename !== "string") {
    throw new Error(`artifact ${artifact.path} does not say where its RDB belongs (no redis facts in the manifest)`);
  }
  return facts as RedisFacts;
}

async function restoreArtifact(ctx: RestoreContext<RedisOptions>, artifact: Artifact): Promise<string> {
  const facts = redisFactsOf(artifact);
  const settings = options.parse(ctx.options ?? {});
  const container = ctx.service?.containers[0];
  const running = runningContainer(ctx.service);
  let location: DataLocation;
  if (container) {
    const found = locateDataPath(facts.dir, container.mounts);
    if (!found) throw new Error(`service ${ctx.serviceName} has no volume at ${facts.dir} any more: mount its data volume there again before restoring`);
    location = found;
  } else {
    if (!artifact.volume) throw new Error(`artifact ${artifact.path} does not say which volume it came from, and service ${ctx.serviceName} has no container to ask`);
    location = { mount: { type: artifact.volume.kind, source: artifact.volume.name, destination: "", readOnly: false }, subpath: facts.subpath, containerPath: facts.dir };
  }
  // Restore into the setup the service has now (AOF may have been switched on or off since).
  const target = running ? redisTarget(ctx.serviceName, running, settings.port, settings.password_env) : undefined;
  const now = target && !ctx.dryRun ? await readPersistenceConfig(target).catch(() => undefined) : undefined;
  const config: PersistenceConfig = now ? { ...now, dir: facts.dir } : facts;
  const toStop = containersToStop(ctx.project, [ctx.serviceName]);
  const exists = location.mount.type === "bind" || (await inspectVolume(location.mount.source)) !== undefined;
  const what = `RDB of ${facts.keys} keys (taken ${facts.takenAt}) into ${facts.dir}/${config.dbfilename} on ${location.mount.type} ${location.mount.source}${config.aof ? `, append-only files rebuilt from it` : ""}`;
  if (ctx.dryRun) {
    return `would restore ${what}; stop ${toStop.map((c) => c.name).join(", ") || "nothing"}; ${exists && ctx.rescue ? "keep a rescue copy of the volume first" : "no rescue copy"}; then check the key count`;
  }
  if (!exists) {
    log.info(`creating volume ${location.mount.source} (it does not exist on this host)`);
    await createVolume({ name: location.mount.source, driver: artifact.volume?.driver ?? "local", labels: artifact.volume?.labels ?? {}, options: {} });
  }
  const stoppage = await stopContainers(toStop, ctx.journal, ctx.config.stop_timeout_seconds);
  try {
    if (exists && ctx.rescue) await keepRescueCopy(ctx, location, artifact);
    await replaceRedisFiles(ctx.helperImage, ctx.project.name, location, (helper, pipe, dir) => ctx.reader.extract(artifact, helper, pipe, dir, artifact.path), facts.dbfilename, config);
  } finally {
    await stoppage.release();
  }
  const downtime = stoppage.stopped.length ? ` (stopped ${stoppage.stopped.map((c) => c.name).join(", ")} for ${stoppage.downtimeSeconds().toFixed(1)} s)` : "";
  if (!running || !target) return `restored ${what}${downtime}; the service is not running: start it (docker compose up -d ${ctx.serviceName}) and it loads the restored data`;
  await waitUntilLoaded(target, 300_000);
  const live = await readLiveFacts(target);
  const problems = compareKeyspaces(facts.keyspace, live.keyspace);
  if (problems.length) {
    const message = `Redis of service ${ctx.serviceName} runs on the restored data but ${problems.join("; ")}`;
    if (facts.keysExact) throw new Error(message);
    log.warn(`${message} (the recorded counts were approximate)`);
  }
  return `restored ${what}${downtime}; checked: ${live.keys} keys${facts.keysExact ? ", as recorded at the BGSAVE" : ""}`;
}

async function waitUntilLoaded(target: RedisTarget, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  while (Date.now() < deadline) {
    try {
      const persistence = parseInfo(await redisCli(target, ["INFO", "persistence"], { timeoutMs: 10_000 }));
      if (persistence.loading === "0") return;
      last = "still loading";
    } catch (error) {
      last = (error as Error).message;
      if (error instanceof RedisError && /password/.test(last)) throw error;
    }
    await sleep(300);
  }
  throw new Error(`Redis of service ${target.service} did not come back with the restored data within ${timeoutMs / 1000} s (${last}): see its log (docker compose logs ${target.service})`);
}

async function keepRescueCopy(ctx: RestoreContext<unknown>, location: DataLocation, artifact: Artifact): Promise<void> {
  const rescue = ctx.rescue!;
  const selected: SelectedMount = { mount: { ...location.mount, readOnly: true }, archiveName: artifact.volume ? archiveBaseName(artifact.volume) : location.mount.source, sharedWith: [] };
  const [copy] = await captureMounts(ctx.helperImage, ctx.project.name, [selected], await rescue.store(ctx.serviceName));
  rescue.add(ctx.serviceName, copy);
  log.info(`kept a rescue copy of ${location.mount.source} as ${copy.path} of the rescue run`);
}

/**
 * The shell lines (run in the data directory) that put the extracted RDB `archived` in place as
 * the service's dbfilename and rebuild (or drop) the append-only files.
 */
export function redisSwapLines(archived: string, config: PersistenceConfig): string[] {
  const q = shellQuote;
  const rdb = q(config.dbfilename);
  const lines = [
    "set -e",
    `owner=$(stat -c %u:%g ${q(stagingName)}/${q(archived)})`,
    `rm -f -- ${rdb}`,
    `mv -- ${q(stagingName)}/${q(archived)} ${rdb}`,
    // Old append-only files describe the data being replaced: Redis would load them instead.
    ...(config.appenddirname ? [`rm -rf -- ${q(config.appenddirname)}`] : []),
    `rm -f -- ${q(config.appendfilename)}`,
  ];
  if (config.aof && config.appenddirname) {
    const base = `${config.appendfilename}.1.base.rdb`;
    const dir = q(config.appenddirname);
    lines.push(
      `mkdir -m 700 -- ${dir}`,
      `cp -p -- ${rdb} ${dir}/${q(base)}`,
      `printf 'file %s seq 1 type b\\n' ${q(base)} > ${dir}/${q(`${config.appendfilename}.manifest`)}`,
      `chmod 600 ${dir}/${q(`${config.appendfilename}.manifest`)}`,
      `chown -R "$owner" ${dir}`,
    );
  } else if (config.aof) {
    lines.push(`cp -p -- ${rdb} ${q(config.appendfilename)}`);
  }
  lines.push(`rm -rf -- ${q(stagingName)}`);
  return lines;
}

async function replaceRedisFiles(image: string, project: string, location: DataLocation, extract: ExtractTree, archived: string, config: PersistenceConfig): Promise<void> {
  await withHelper(image, project, [`${location.mount.source}:/v`], async (helper, pipe) => {
    if (!pipe) throw new Error("restore through a remote engine is not supported yet: run composure on the Docker host");
    const dir = helperPath("/v", location.subpath);
    const staging = helperPath(dir, stagingName);
    const prepared = await helper.run(["sh", "-c", `mkdir -p ${shellQuote(dir)} && rm -rf ${shellQuote(staging)} && mkdir -m 700 ${shellQuote(staging)}`]);
    if (prepared.exitCode !== 0) throw new Error(`cannot prepare ${location.containerPath} on ${location.mount.source} for the restore: ${prepared.stderr.trim()}`);
    try {
      await extract(helper, pipe, staging);
      const script = await writeScript(pipe, "swap.sh", [`cd ${shellQuote(dir)}`, ...redisSwapLines(archived, config)]);
      const swapped = await helper.run(["sh", script]);
      if (swapped.exitCode !== 0) throw new Error(`cannot put the restored RDB into ${location.containerPath}: ${swapped.stderr.trim()}`);
    } catch (error) {
      await helper.run(["rm", "-rf", staging]);
      throw error;
    }
  });
}

// Acceptance of the redis strategy against the Redis 7.0 fixture: 100,000 keys of mixed types,
// a writer adding keys all through the backup, a hot BGSAVE copy (the container never
// restarts), then a wipe and a restore that gives back exactly the keys present at the fork:
// the recorded count, the base data bit for bit (DEBUG DIGEST), and of the writer's keys exactly
// those written before the fork. One service runs with AOF and a password, one without AOF
// and with keys in a second database.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { ComposeProject, composure, containersOf, docker, fixtureImage, inVolumes, requireDocker, sh, tempDir } from "../support/composure.ts";

const image = fixtureImage("redis");
const password = "s3cret-for-tests";
const project = new ComposeProject(
  `cmpt-redis${process.pid}`,
  `
version: "3.8"
services:
  cache:
    image: ${image}
    command: ["sh", "-c", "exec docker-entrypoint.sh redis-server --appendonly yes --requirepass \\"$$REDIS_PASSWORD\\" --enable-debug-command local"]
    environment: { REDIS_PASSWORD: "${password}" }
    volumes: ["cachedata:/data"]
  plain:
    image: ${image}
    command: ["redis-server", "--enable-debug-command", "local"]
    volumes: ["plaindata:/data"]
volumes: { cachedata: {}, plaindata: {} }
`,
);
const { containerOf, startedAt } = containersOf(project);
const destination = tempDir("redis-dest");
const env = { PROJECT: project.name, DESTINATION: destination };
const baseKeys = 100_000;

function resp(...args: string[]): string {
  return `*${args.length}\r\n${args.map((arg) => `$${Buffer.byteLength(arg)}\r\n${arg}\r\n`).join("")}`;
}

/** 100,000 keys: strings, hashes, lists, sets and sorted sets, 20,000 of each. */
function mixedKeys(): string {
  const commands: string[] = [];
  for (let i = 0; i < baseKeys / 5; i++) {
    commands.push(resp("SET", `str:${i}`, `value-${i}-${"x".repeat(i % 50)}`));
    commands.push(resp("HSET", `hash:${i}`, "name", `n${i}`, "count", String(i), "half", String(i / 2)));
    commands.push(resp("RPUSH", `list:${i}`, "a", String(i), "c"));
    commands.push(resp("SADD", `set:${i}`, "m1", `m${i}`, "m3"));
    commands.push(resp("ZADD", `zset:${i}`, "1", "one", String(i), "many", "2.5", "half"));
  }
  return commands.join("");
}

async function cli(service: string, ...args: string[]): Promise<string> {
  const id = await containerOf(service);
  const auth = service === "cache" ? ["-e", `REDISCLI_AUTH=${password}`] : [];
  return (await docker("exec", ...auth, id, "redis-cli", ...args)).trim();
}

async function pipe(service: string, input: string): Promise<void> {
  const id = await containerOf(service);
  const auth = service === "cache" ? ["-e", `REDISCLI_AUTH=${password}`] : [];
  const output = await sh("docker", ["exec", "-i", ...auth, id, "redis-cli", "--pipe"], input);
  assert.match(output, /errors: 0, replies: \d+/, output);
}

/**
 * A writer adding live:1, live:2, ... in order on one connection (so the keys present at any
 * instant are live:1 .. live:n), about a thousand a second, until told to stop.
 */
async function startWriter(): Promise<void> {
  const id = await containerOf("cache");
  const loop =
    "rm -f /tmp/stop /tmp/writer.done; " +
    "{ i=0; while [ ! -e /tmp/stop ]; do i=$((i+1)); echo \"SET live:$i $i\"; echo $i > /tmp/writer.count; [ $((i % 20)) -eq 0 ] && sleep 0.02; done; } | redis-cli >/dev/null; " +
    "touch /tmp/writer.done";
  await docker("exec", "-d", "-e", `REDISCLI_AUTH=${password}`, id, "sh", "-c", loop);
}

async function writerCount(): Promise<number> {
  const id = await containerOf("cache");
  return Number(await docker("exec", id, "sh", "-c", "cat /tmp/writer.count 2>/dev/null || echo 0"));
}

async function stopWriter(): Promise<number> {
  const id = await containerOf("cache");
  await docker("exec", id, "touch", "/tmp/stop");
  for (let attempt = 0; attempt < 100; attempt++) {
    if ((await docker("exec", id, "sh", "-c", "[ -e /tmp/writer.done ] && echo done || true")) === "done") return writerCount();
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error("the writer did not stop");
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("redis strategy", { timeout: 600_000 }, () => {
  let baseDigest = "";
  let plainDigest = "";

  before(async () => {
    await requireDocker();
    await project.up();
    for (const service of ["cache", "plain"]) {
      for (let attempt = 0; attempt < 50 && (await cli(service, "PING").catch(() => "")) !== "PONG"; attempt++) await sleep(200);
    }
    await pipe("cache", mixedKeys());
    assert.equal(await cli("cache", "DBSIZE"), String(baseKeys));
    baseDigest = await cli("cache", "DEBUG", "DIGEST");
    const plain: string[] = [];
    for (let i = 0; i < 1000; i++) plain.push(resp("SET", `k:${i}`, String(i)));
    plain.push(resp("SELECT", "1"));
    for (let i = 0; i < 10; i++) plain.push(resp("HSET", `other:${i}`, "f", String(i)));
    await pipe("plain", plain.join(""));
    plainDigest = await cli("plain", "DEBUG", "DIGEST");
  });
  after(async () => {
    await project.down().catch(() => undefined);
  });

  test("a hot backup under writes restores exactly the keys present at the BGSAVE", async () => {
    const startedBefore = { cache: await startedAt("cache"), plain: await startedAt("plain") };
    await startWriter();
    while ((await writerCount()) < 50) await sleep(100);

    const backup = await composure("backup", env);
    const written = await stopWriter();
    assert.equal(backup.code, 0, backup.stderr);
    assert.doesNotMatch(backup.stderr + backup.stdout, new RegExp(password), "the password is never printed");
    assert.equal(await startedAt("cache"), startedBefore.cache, "cache was never restarted during the backup");
    assert.equal(await startedAt("plain"), startedBefore.plain, "plain was never restarted during the backup");

    const runs = JSON.parse((await composure("list", env, ["--json"])).stdout);
    const manifest = JSON.parse(readFileSync(path.join(destination, project.name, runs[0].run, "manifest.json"), "utf8"));
    const record = (name: string) => manifest.services.find((service: { name: string }) => service.name === name);
    assert.equal(record("cache").strategy, "redis", "detected from the image");
    assert.equal(record("cache").downtimeSeconds, 0);
    const facts = record("cache").artifacts[0].facts;
    assert.equal(facts.keysExact, true);
    assert.ok(facts.usedMemory > 0, "used memory recorded");
    assert.deepEqual(facts.files, ["dump.rdb", "appendonlydir"], "the RDB and the AOF directory are archived");
    const atFork = facts.keys - baseKeys;
    assert.ok(atFork >= 50, `the writer's keys present at the fork are counted (${facts.keys})`);
    assert.ok(atFork < written, `keys written after the fork are not in the backup (${atFork} of ${written})`);
    const plainFacts = record("plain").artifacts[0].facts;
    assert.deepEqual(plainFacts.keyspace, { db0: { keys: 1000, expires: 0 }, db1: { keys: 10, expires: 0 } });
    assert.deepEqual(plainFacts.files, ["dump.rdb"]);

    // Wipe both.
    await cli("cache", "FLUSHALL");
    await cli("cache", "SET", "junk", "after the backup");
    await cli("plain", "FLUSHALL");

    const restore = await composure("restore", { ...env, FORCE: "1" });
    assert.equal(restore.code, 0, restore.stderr);
    assert.match(restore.stderr, new RegExp(`cache: restored RDB of ${facts.keys} keys .*append-only files rebuilt .*checked: ${facts.keys} keys, as recorded at the BGSAVE`));
    assert.match(restore.stderr, /plain: restored RDB of 1010 keys .*checked: 1010 keys/);

    assert.equal(await cli("cache", "DBSIZE"), String(facts.keys), "the recorded key count");
    // The writer's keys: exactly live:1 .. live:<atFork>, each with its value.
    const check = "local n = 0; for i = 1, tonumber(ARGV[1]) do if redis.call('GET', 'live:' .. i) ~= tostring(i) then return -i end; n = n + 1 end; return n";
    assert.equal(await cli("cache", "EVAL", check, "0", String(atFork)), String(atFork));
    assert.equal(await cli("cache", "EXISTS", `live:${atFork + 1}`, "junk"), "0");
    // The base data, bit for bit: drop the writer's keys and compare digests.
    await cli("cache", "EVAL", "for i = 1, tonumber(ARGV[1]) do redis.call('DEL', 'live:' .. i) end; return 1", "0", String(atFork));
    assert.equal(await cli("cache", "DEBUG", "DIGEST"), baseDigest, "the 100,000 base keys are exactly as they were");
    assert.equal(await cli("plain", "DEBUG", "DIGEST"), plainDigest);

    // AOF was on: the rebuilt append-only files carry the restored data across a restart.
    await docker("restart", await containerOf("cache"));
    for (let attempt = 0; attempt < 50 && (await cli("cache", "PING").catch(() => "")) !== "PONG"; attempt++) await sleep(200);
    assert.equal(await cli("cache", "DEBUG", "DIGEST"), baseDigest, "loaded from the rebuilt AOF after a restart");
    const aof = await inVolumes([`${project.volume("cachedata")}:/d:ro`], "cat /d/appendonlydir/appendonly.aof.manifest; stat -c '%u %a' /d/appendonlydir /d/dump.rdb");
    assert.match(aof, /file appendonly\.aof\.1\.base\.rdb seq 1 type b/);
    assert.match(aof, /^999 700$/m);
    assert.match(aof, /^999 600$/m);
  });

});

describe("redis strategy credentials", { timeout: 600_000 }, () => {
  test("a wrong or missing password is reported with what to set, and the run is partial", async () => {
    const wrong = new ComposeProject(
      `cmpt-redispw${process.pid}`,
      `
version: "3.8"
services:
  locked:
    image: ${image}
    command: ["redis-server", "--requirepass", "right"]
    environment: { CACHE_PASSWORD: "wrong" }
    labels: { composure.redis.password_env: CACHE_PASSWORD }
    volumes: ["lockeddata:/data"]
  nopass:
    image: ${image}
    command: ["redis-server", "--requirepass", "right"]
    volumes: ["nopassdata:/data"]
  open:
    image: ${image}
volumes: { lockeddata: {}, nopassdata: {} }
`,
    );
    try {
      await wrong.up();
      await sleep(1000);
      const outcome = await composure("backup", { PROJECT: wrong.name, DESTINATION: tempDir("redis-pw") });
      assert.equal(outcome.code, 1, outcome.stderr);
      assert.match(outcome.stderr, /locked: backup failed: .*CACHE_PASSWORD of the container is not accepted/);
      assert.match(outcome.stderr, /nopass: backup failed: .*wants a password: put it in the container's environment as REDIS_PASSWORD/);
      assert.match(outcome.stderr, /open: 1 artifact\(s\)/, "the other services of the run are still backed up");
      assert.match(outcome.stderr, /run \S+ partial: 1 of 3 services backed up/);
    } finally {
      await wrong.down().catch(() => undefined);
    }
  });
});

// Unit tests of the hot-snapshot strategies (redis, prometheus, victoriametrics) that need no
// Docker: detection from image names, options from label strings, where data lives in mounts,
// reading wget and redis-cli output, and the restore-drill comparisons.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { ServiceInfo } from "../../scripts/lib/compose/discover.ts";
import { detectStrategy, getStrategy } from "../../scripts/lib/strategies/registry.ts";
import { endpoint, parseWgetResult } from "../../scripts/lib/strategies/shared/http.ts";
import { imageRepository, locateDataPath } from "../../scripts/lib/strategies/shared/service-data.ts";
import { compareQueryFacts, factsRange, pickSamples, type QueryFacts } from "../../scripts/lib/strategies/shared/tsdb.ts";
import { adminApiHint } from "../../scripts/lib/strategies/prometheus/index.ts";
import { snapshotPaths } from "../../scripts/lib/strategies/victoriametrics/index.ts";
import { bgsaveReply, compareKeyspaces, parseConfigGet, parseInfo, parseKeyspace, redisTarget } from "../../scripts/lib/strategies/redis/cli.ts";
import { redisSwapLines } from "../../scripts/lib/strategies/redis/index.ts";

const serviceWith = (image: string): ServiceInfo => ({ project: "p", name: "s", image, labels: {}, containers: [], dependsOn: [] });

describe("detection from image names", () => {
  const cases: [string, string][] = [
    ["redis", "redis"],
    ["redis:7.2-alpine", "redis"],
    ["docker.io/library/redis:7", "redis"],
    ["bitnami/redis:latest", "redis"],
    ["composure-fixture/redis:latest", "redis"],
    ["prom/prometheus:v2.42.0", "prometheus"],
    ["quay.io/prometheus/prometheus@sha256:0123abcd", "prometheus"],
    ["composure-fixture/prometheus:latest", "prometheus"],
    ["victoriametrics/victoria-metrics:v1.79.0", "victoriametrics"],
    ["composure-fixture/victoriametrics:latest", "victoriametrics"],
    ["localhost:5000/victoriametrics/victoria-metrics", "victoriametrics"],
    ["oliver006/redis_exporter", "volume"],
    ["prom/node-exporter", "volume"],
    ["victoriametrics/vmagent", "volume"],
    ["redis-commander", "volume"],
  ];
  for (const [image, kind] of cases) {
    test(`${image} is backed up with ${kind}`, () => assert.equal(detectStrategy(serviceWith(image)), kind));
  }

  test("an image reference loses registry, tag and digest", () => {
    assert.equal(imageRepository("registry.example.com:5000/team/redis:7@sha256:ab"), "team/redis");
    assert.equal(imageRepository("library/redis"), "redis");
  });
});

describe("options from labels", () => {
  test("label strings are coerced and defaults filled in", () => {
    assert.deepEqual(getStrategy("redis").options.parse({ port: "6380" }), { password_env: "REDIS_PASSWORD", port: 6380, timeout: 600 });
    assert.deepEqual(getStrategy("prometheus").options.parse({}), { url: "http://localhost:9090", data_path: "/prometheus", query: "up", timeout: 600 });
    assert.deepEqual(getStrategy("victoriametrics").options.parse({ timeout: "30", query: "vm_rows" }), {
      url: "http://localhost:8428",
      data_path: "/victoria-metrics-data",
      query: "vm_rows",
      timeout: 30,
    });
  });

  test("unknown and malformed options are refused", () => {
    assert.equal(getStrategy("prometheus").options.safeParse({ urll: "http://x" }).success, false);
    assert.equal(getStrategy("prometheus").options.safeParse({ data_path: "relative/dir" }).success, false);
    assert.equal(getStrategy("redis").options.safeParse({ password_env: "NOT A VAR" }).success, false);
    assert.equal(getStrategy("victoriametrics").options.safeParse({ url: "not a url" }).success, false);
  });
});

describe("where data lives", () => {
  const mounts = [
    { type: "volume" as const, source: "p_data", destination: "/data", readOnly: false },
    { type: "volume" as const, source: "p_deep", destination: "/data/deep", readOnly: false },
    { type: "bind" as const, source: "/srv/conf", destination: "/etc/conf", readOnly: true },
  ];

  test("a path maps to the deepest mount holding it, with its path inside", () => {
    assert.deepEqual(locateDataPath("/data", mounts), { mount: mounts[0], subpath: ".", containerPath: "/data" });
    assert.deepEqual(locateDataPath("/data/deep/tsdb/", mounts), { mount: mounts[1], subpath: "tsdb", containerPath: "/data/deep/tsdb" });
    assert.equal(locateDataPath("/datadir", mounts), undefined, "a name prefix is not a parent directory");
    assert.equal(locateDataPath("/var/lib/redis", mounts), undefined);
  });
});

describe("HTTP through busybox wget", () => {
  test("a 200 answer gives the body", () => {
    assert.deepEqual(parseWgetResult(0, '{"status":"ok"}', "  HTTP/1.1 200 OK\n  Content-Type: application/json\n"), { status: 200, body: '{"status":"ok"}' });
  });

  test("an error status and a refused connection are told apart", () => {
    const failed = parseWgetResult(1, "", "  HTTP/1.1 500 Internal Server Error\nwget: server returned error: HTTP/1.1 500 Internal Server Error\n");
    assert.equal(failed.status, 500);
    const refused = parseWgetResult(1, "", "wget: can't connect to remote host (127.0.0.1): Connection refused\n");
    assert.equal(refused.status, 0);
    assert.match(refused.error!, /Connection refused/);
  });

  test("endpoints keep a path prefix and encode the query", () => {
    assert.equal(endpoint("http://localhost:9090/prom/", "/api/v1/query", { query: 'up{job="x"}', time: 5 }), "http://localhost:9090/prom/api/v1/query?query=up%7Bjob%3D%22x%22%7D&time=5");
  });

  test("the admin API hint names the flag and the service", () => {
    assert.match(adminApiHint("metrics"), /--web\.enable-admin-api .*service metrics/);
  });
});

describe("restore-drill facts of the TSDBs", () => {
  const matrix = [
    { metric: { __name__: "up", job: "b" }, values: Array.from({ length: 37 }, (_, index) => [1000 + index * 600, String(index)] as [number, string]) },
    { metric: { job: "a", __name__: "up" }, values: [[1000, "1"] as [number, string]] },
  ];

  test("the facts window ends a minute ago on a step boundary", () => {
    const range = factsRange(100_000);
    assert.equal(range.end % range.step, 0);
    assert.ok(range.end <= 100_000 - 60);
    assert.equal(range.end - range.start, 6 * 3600);
  });

  test("a few evenly spaced points of a few series are kept, in a stable order", () => {
    const samples = pickSamples(matrix);
    assert.deepEqual(samples[0], { metric: { job: "a", __name__: "up" }, points: [[1000, "1"]] });
    assert.equal(samples[1].points.length, 6);
    assert.deepEqual(samples[1].points[0], [1000, "0"]);
    assert.deepEqual(samples[1].points[5], [1000 + 36 * 600, "36"]);
  });

  test("the same answers match; a changed value, a missing series or lost series do not", () => {
    const recorded: QueryFacts = { query: "up", start: 0, end: 1, step: 600, series: 10, samples: pickSamples(matrix) };
    assert.deepEqual(compareQueryFacts(recorded, { series: 10, matrix }, "equal"), []);
    assert.deepEqual(compareQueryFacts(recorded, { series: 12, matrix }, "at-least"), []);
    const changed = structuredClone(matrix);
    changed[0].values[36][1] = "99";
    assert.match(compareQueryFacts(recorded, { series: 10, matrix: changed }, "equal").join(), /is 99 instead of 36/);
    assert.match(compareQueryFacts(recorded, { series: 10, matrix: [matrix[0]] }, "equal").join(), /is missing/);
    assert.match(compareQueryFacts(recorded, { series: 9, matrix }, "at-least").join(), /9 series instead of at least 10/);
  });

  test("a VictoriaMetrics snapshot lives in four areas of the storage", () => {
    assert.deepEqual(snapshotPaths("20260101-AB"), ["snapshots/20260101-AB", "data/small/snapshots/20260101-AB", "data/big/snapshots/20260101-AB", "indexdb/snapshots/20260101-AB"]);
  });
});

describe("redis-cli output and key counts", () => {
  test("INFO, keyspace and CONFIG GET are read", () => {
    const info = "# Persistence\r\nloading:0\r\nrdb_bgsave_in_progress:1\r\n\r\n";
    assert.deepEqual(parseInfo(info), { loading: "0", rdb_bgsave_in_progress: "1" });
    assert.deepEqual(parseKeyspace("# Keyspace\r\ndb0:keys=3,expires=1,avg_ttl=5\r\ndb4:keys=2,expires=0,avg_ttl=0\r\n"), { db0: { keys: 3, expires: 1 }, db4: { keys: 2, expires: 0 } });
    assert.deepEqual(parseConfigGet("dbfilename\ndump.rdb\nappenddirname\nappendonlydir\nmasterauth\n\n"), { dbfilename: "dump.rdb", appenddirname: "appendonlydir", masterauth: "" });
  });

  test("the BGSAVE reply is found between the pause and the unpause", () => {
    assert.equal(bgsaveReply("OK\n# Keyspace\r\ndb0:keys=3,expires=0,avg_ttl=0\r\n\nBackground saving started\nOK\n"), "Background saving started");
    assert.equal(bgsaveReply("OK\n# Keyspace\r\n\nERR Background save already in progress\nOK\n"), "ERR Background save already in progress");
    assert.equal(bgsaveReply("ERR syntax error\n# Keyspace\r\n\nBackground saving started\nERR unknown subcommand\n"), "Background saving started");
  });

  test("restored key counts must equal the recorded ones, within what may have expired", () => {
    assert.deepEqual(compareKeyspaces({ db0: { keys: 5, expires: 0 } }, { db0: { keys: 5, expires: 0 } }), []);
    assert.match(compareKeyspaces({ db0: { keys: 5, expires: 0 } }, { db0: { keys: 4, expires: 0 } }).join(), /db0 has 4 keys instead of 5/);
    assert.deepEqual(compareKeyspaces({ db0: { keys: 5, expires: 2 } }, { db0: { keys: 3, expires: 0 } }), []);
    assert.match(compareKeyspaces({ db0: { keys: 5, expires: 0 } }, { db0: { keys: 5, expires: 0 }, db1: { keys: 1, expires: 0 } }).join(), /db1 has 1 keys instead of 0/);
  });

  test("the password goes into the exec's environment, from the variable named", () => {
    const target = redisTarget("cache", { id: "c1", env: ["PATH=/bin", "CACHE_PW=hunter2"] }, 6379, "CACHE_PW");
    assert.deepEqual(target.env, ["REDISCLI_AUTH=hunter2"]);
    assert.deepEqual(redisTarget("cache", { id: "c1", env: [] }, 6379, "REDIS_PASSWORD").env, []);
  });

  test("with AOF on, Redis 7 gets a base file and a manifest built from the RDB", () => {
    const lines = redisSwapLines("dump.rdb", { version: "7.0.15", dir: "/data", dbfilename: "dump.rdb", aof: true, appenddirname: "appendonlydir", appendfilename: "appendonly.aof" }).join("\n");
    assert.match(lines, /rm -rf -- 'appendonlydir'/);
    assert.match(lines, /cp -p -- 'dump.rdb' 'appendonlydir'\/'appendonly.aof.1.base.rdb'/);
    assert.match(lines, /printf 'file %s seq 1 type b\\n' 'appendonly.aof.1.base.rdb' > 'appendonlydir'\/'appendonly.aof.manifest'/);
    const old = redisSwapLines("dump.rdb", { version: "6.2.0", dir: "/data", dbfilename: "dump.rdb", aof: true, appendfilename: "appendonly.aof" }).join("\n");
    assert.match(old, /cp -p -- 'dump.rdb' 'appendonly.aof'/);
    const off = redisSwapLines("dump.rdb", { version: "7.0.15", dir: "/data", dbfilename: "dump.rdb", aof: false, appenddirname: "appendonlydir", appendfilename: "appendonly.aof" }).join("\n");
    assert.match(off, /rm -rf -- 'appendonlydir'/, "stale append-only files never outlive a restore");
    assert.doesNotMatch(off, /base\.rdb/);
  });
});

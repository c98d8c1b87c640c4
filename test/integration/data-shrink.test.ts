// Acceptance of fact trends and the retention that guards their evidence, on the real engine:
// a PostgreSQL table that lost 90% of its rows makes the next backup suspect (log, manifest,
// webhook, textfile, and promtool shows ComposureDataShrank firing on those samples); prune with
// keep_last 1 keeps the run from before the loss until make accept. A volume overwritten with
// random bytes of the same size is not suspect, one that lost 80% of its files is. With
// retention.require_verified (the default) an unverified newer run lets no older run go; after
// make verify it does.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import http from "node:http";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { parse as parseYaml } from "yaml";
import { backupsOf, ComposeProject, composure, docker, fixtureImage, freePort, inVolumes, requireDocker, tempDir, waitFor } from "../support/composure.ts";
import { parseExposition, valueOf, type Sample } from "../support/metrics.ts";

const project = new ComposeProject(
  `cmpt-shrink${process.pid}`,
  `
version: "3.8"
services:
  db:
    image: ${fixtureImage("postgres")}
    environment: { POSTGRES_PASSWORD: "shrink-test", POSTGRES_DB: shop }
  files:
    image: $BUSYBOX
    init: true
    command: ["sleep", "100000"]
    volumes: ["data:/data"]
volumes: { data: {} }
`,
);

const alertRules = path.resolve(import.meta.dirname, "../../exporters/prometheus/composure-alerts.yml");

/** A destination, textfile folder and composure.yml of its own; `retention` is YAML under retention:. */
function place(name: string, retention: string, extra = "") {
  const dir = tempDir(`shrink-${name}`);
  const config = path.join(dir, "composure.yml");
  writeFileSync(config, `retention:\n${retention}\n${extra}`);
  const env = { PROJECT: project.name, DESTINATION: path.join(dir, "backups"), CONFIG: config, METRICS_DIR: path.join(dir, "textfile") };
  const runs = backupsOf(path.join(env.DESTINATION, project.name), "plain");
  const textfile = (): Sample[] => parseExposition(readFileSync(path.join(env.METRICS_DIR, `composure-${project.name}.prom`), "utf8"));
  return { env, ...runs, textfile, runExists: (id: string) => existsSync(path.join(env.DESTINATION, project.name, id)) };
}

async function backup(env: Record<string, string>, service: string): Promise<string> {
  const outcome = await composure("backup", { ...env, SERVICE: service });
  assert.equal(outcome.code, 0, outcome.stderr);
  return outcome.stderr;
}

async function prune(env: Record<string, string>): Promise<string> {
  const outcome = await composure("prune", env);
  assert.equal(outcome.code, 0, outcome.stderr);
  return outcome.stdout;
}

const psql = async (sql: string) => docker("exec", await project.containerId("db"), "psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-U", "postgres", "-d", "shop", "-c", sql);
const inData = (script: string) => inVolumes([`${project.volume("data")}:/data`], script);
const recordOf = (manifest: { services: { name: string }[] }, service: string): any => manifest.services.find((record) => record.name === service);

/** A webhook receiver on 127.0.0.1 keeping every JSON payload. */
async function webhookReceiver() {
  const payloads: any[] = [];
  const server = http.createServer((request, response) => {
    let body = "";
    request.on("data", (chunk: Buffer) => (body += chunk));
    request.on("end", () => {
      payloads.push(JSON.parse(body));
      response.end("ok");
    });
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${port}/hook`, payloads, close: () => new Promise((resolve) => server.close(resolve)) };
}

/** The rule's annotations with these labels put in (the rule uses only {{ $labels.<name> }}). */
function annotationsOf(alert: string, labels: Record<string, string>): Record<string, string> {
  const rules = (parseYaml(readFileSync(alertRules, "utf8")) as { groups: { rules: { alert?: string; annotations: Record<string, string> }[] }[] }).groups.flatMap((group) => group.rules);
  const annotations = rules.find((rule) => rule.alert === alert)!.annotations;
  return Object.fromEntries(Object.entries(annotations).map(([key, template]) => [key, template.replace(/\{\{ \$labels\.(\w+) \}\}/g, (_, name: string) => labels[name])]));
}

/** promtool test rules: ComposureDataShrank fires on these samples (held for 10 minutes) for exactly these label sets. */
function promtoolFires(samples: Sample[], expected: Record<string, string>[]): void {
  const dir = tempDir("shrink-promtool");
  const series = samples.map((sample) => ({ series: `${sample.name}{${Object.entries(sample.labels).map(([key, value]) => `${key}="${value}"`).join(",")}}`, values: `${sample.value}x10` }));
  const exp_alerts = expected.map((labels) => ({ exp_labels: { severity: "critical", ...labels }, exp_annotations: annotationsOf("ComposureDataShrank", labels) }));
  const file = path.join(dir, "shrink.test.yml");
  writeFileSync(file, JSON.stringify({ rule_files: [alertRules], evaluation_interval: "1m", tests: [{ interval: "1m", input_series: series, alert_rule_test: [{ eval_time: "5m", alertname: "ComposureDataShrank", exp_alerts }] }] }));
  const result = spawnSync("promtool", ["test", "rules", file], { encoding: "utf8" });
  assert.equal(result.status, 0, `${result.stdout}${result.stderr}`);
}

describe("fact trends and the retention that guards their evidence", { timeout: 900_000 }, () => {
  before(async () => {
    await requireDocker();
    await project.up();
    await waitFor("postgres", async () => (await docker("exec", await project.containerId("db"), "pg_isready", "-h", "127.0.0.1", "-q").then(() => true)));
    await psql("CREATE TABLE orders (id int PRIMARY KEY, note text NOT NULL); INSERT INTO orders SELECT g, md5(g::text) FROM generate_series(1, 10000) g");
    await inData("i=0; while [ $i -lt 100 ]; do i=$((i+1)); head -c 4096 /dev/urandom > /data/file-$i; done");
  });
  after(async () => {
    await project.down().catch(() => undefined);
  });

  test("PostgreSQL: 90% of a table deleted makes the next backup suspect; prune keeps the run before it until make accept", async () => {
    const hook = await webhookReceiver();
    const { env, runIds, manifestOf, textfile, runExists } = place("pg", "  local: { keep_last: 1 }", `notifications:\n  webhooks: [{ url: "${hook.url}", events: [success] }]\n`);
    try {
      await backup(env, "db");
      await psql("DELETE FROM orders WHERE id % 10 <> 0");
      const log = await backup(env, "db");
      const [first, second] = runIds();
      assert.match(log, /db: SUSPECTED DATA LOSS since run \S+: shop\.public\.orders: 10,000 -> 1,000 rows/);
      assert.match(log, new RegExp(`make accept RUN=${second} SERVICE=db`));

      const record = recordOf(manifestOf(second), "db");
      assert.equal(record.status, "ok", "the backup itself succeeded");
      assert.deepEqual(record.suspect, [{ what: "shop.public.orders", unit: "rows", was: 10_000, now: 1_000 }]);
      assert.deepEqual(record.trend, { baseline: first, largestDrop: 0.9 });
      const labels = { project: project.name, service: "db" };
      assert.deepEqual(hook.payloads.at(-1).services.find((service: { name: string }) => service.name === "db").suspect, ["shop.public.orders: 10,000 -> 1,000 rows"]);

      const samples = textfile();
      assert.equal(valueOf(samples, "composure_last_backup_suspect", labels), 1);
      assert.equal(valueOf(samples, "composure_last_backup_largest_drop_ratio", labels), 0.9);
      promtoolFires(samples.filter((sample) => sample.name === "composure_last_backup_suspect"), [{ ...labels, tier: "medium" }]);

      assert.equal((await composure("verify", env)).code, 0, "the newest run is verified: only the evidence keeps the first");
      const kept = await prune(env);
      assert.match(kept, new RegExp(`${first} keep .*last good run before suspected loss on shop\\.public\\.orders \\(service db in run ${second}; 'make accept RUN=${second}' lets it go\\)`));
      assert.ok(runExists(first));

      const accept = await composure("accept", { ...env, RUN: second });
      assert.equal(accept.code, 0, accept.stderr);
      assert.match(accept.stderr, /accepted: run \S+ service db: shop\.public\.orders: 10,000 -> 1,000 rows/);
      assert.equal(valueOf(textfile(), "composure_last_backup_suspect", labels), 0, "accepted: the alert clears");
      assert.match(await prune(env), new RegExp(`${first} delete`));
      assert.ok(!runExists(first));
      assert.equal((await composure("accept", { ...env, RUN: second })).code, 2, "nothing left to accept is a usage error");
    } finally {
      await hook.close();
    }
  });

  test("a volume overwritten with random bytes of the same size is not suspect; one that lost 80% of its files is", async () => {
    const { env, runIds, manifestOf } = place("volume", "  local: { keep_last: 10 }");
    await backup(env, "files");
    await inData("for f in /data/file-*; do head -c 4096 /dev/urandom > $f.new && mv $f.new $f; done");
    await backup(env, "files");
    const overwritten = recordOf(manifestOf(runIds().at(-1)!), "files");
    assert.equal(overwritten.suspect, undefined);
    assert.equal(overwritten.trend.largestDrop, 0);
    await inData("i=20; while [ $i -lt 100 ]; do i=$((i+1)); rm /data/file-$i; done");
    const log = await backup(env, "files");
    assert.match(log, /files: SUSPECTED DATA LOSS since run \S+: volume data: 100 -> 20 files; volume data: 409,600 -> 81,920 bytes/);
    assert.deepEqual(recordOf(manifestOf(runIds().at(-1)!), "files").suspect.map((loss: { unit: string }) => loss.unit), ["files", "bytes"]);
  });

  test("require_verified: an unverified newer run lets no older run go; after make verify it does", async () => {
    const { env, runIds, runExists } = place("verified", "  local: { keep_last: 1 }");
    await backup(env, "files");
    await backup(env, "files");
    const [older, newer] = runIds();
    assert.match(await prune(env), new RegExp(`${older} keep .*no newer run of files has passed make verify yet \\(retention\\.require_verified\\)`));
    assert.ok(runExists(older));
    const verify = await composure("verify", env);
    assert.equal(verify.code, 0, verify.stderr);
    assert.match(await prune(env), new RegExp(`${older} delete`));
    assert.ok(!runExists(older) && runExists(newer));
  });
});

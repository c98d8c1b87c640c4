import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, test } from "node:test";
import { parseConfig, resolveServiceSettings } from "../../scripts/lib/config/load.ts";
import { ConfigError } from "../../scripts/lib/errors.ts";

const kinds = ["volume", "postgres", "mariadb", "redis"];

function problemsOf(document: unknown): string[] {
  try {
    parseConfig(document, kinds);
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    return error.issues;
  }
  return [];
}

describe("configuration", () => {
  test("a file with three mistakes reports all three at once, each with its path", () => {
    const problems = problemsOf({ destinaton: "/x", compression: { level: 40 }, services: { db: { strategy: "postgress" } } });
    assert.equal(problems.length, 3, problems.join("\n"));
    assert.ok(problems.includes(`at 'destinaton': unknown key "destinaton" (did you mean "destination"?)`), problems.join("\n"));
    assert.ok(problems.some((p) => /^at 'compression\.level': .*19/.test(p)), problems.join("\n"));
    assert.ok(problems.includes(`at 'services.db.strategy': unknown strategy "postgress" (did you mean "postgres"?)`), problems.join("\n"));
  });

  test("remote.chunk_size takes an rclone size and refuses anything else", () => {
    assert.equal(parseConfig({ remote: { target: "s3:bucket/prefix", chunk_size: "64M" } }, kinds).remote?.chunk_size, "64M");
    assert.equal(parseConfig({ remote: { target: "s3:bucket/prefix", chunk_size: "16Mi" } }, kinds).remote?.chunk_size, "16Mi");
    assert.equal(parseConfig({ remote: { target: "s3:bucket/prefix" } }, kinds).remote?.chunk_size, undefined);
    assert.ok(problemsOf({ remote: { target: "s3:b", chunk_size: "lots" } }).some((p) => /remote\.chunk_size.*rclone size/.test(p)));
  });

  test("an empty file gives the documented defaults", () => {
    const config = parseConfig(null, kinds);
    assert.equal(config.destination, "backups");
    assert.equal(config.compression.level, 2);
    assert.equal(parseConfig({ compression: { algorithm: "gzip" } }, kinds).compression.level, 6);
    assert.equal(parseConfig({ compression: { level: 5 } }, kinds).compression.level, 5);
    assert.equal(config.lock.timeout_seconds, 600);
  });

  test("labels are read into the same settings and the file wins field by field", () => {
    const config = parseConfig({ services: { db: { stop: false, exec: { timeout: 9 } } } }, kinds);
    const { settings, problems } = resolveServiceSettings(
      config,
      { name: "db", labels: { "composure.stop": "true", "composure.tier": "critical", "composure.exec.pre": '["sh", "-c", "sync"]', "composure.volumes": "data, logs" } },
      kinds,
    );
    assert.deepEqual(problems, []);
    assert.equal(settings.stop, false);
    assert.equal(settings.tier, "critical");
    assert.deepEqual(settings.exec, { pre: ["sh", "-c", "sync"], timeout: 9 });
    assert.deepEqual(settings.volumes, ["data", "logs"]);
  });

  test("bad labels are each named, with a did-you-mean for unknown ones", () => {
    const { problems } = resolveServiceSettings(
      parseConfig({}, kinds),
      { name: "web", labels: { "composure.stopp": "true", "composure.stop": "maybe", "composure.exec.pre": "rm -rf /; echo", "composure.tier": "gold" } },
      kinds,
    );
    assert.equal(problems.length, 4, problems.join("\n"));
    assert.ok(problems.some((p) => p.includes(`'composure.stopp': unknown label (did you mean "composure.stop"?)`)));
    assert.ok(problems.some((p) => p.includes(`'composure.stop': expected true or false, got "maybe"`)));
    assert.ok(problems.some((p) => p.includes("'composure.exec.pre': expected a JSON argv array")));
    assert.ok(problems.some((p) => p.includes("labels.tier")));
  });

  test("strategy options travel as composure.<kind>.<option> labels", () => {
    const { settings, problems } = resolveServiceSettings(parseConfig({}, kinds), { name: "db", labels: { "composure.postgres.databases": "a,b" } }, kinds);
    assert.deepEqual(problems, []);
    assert.deepEqual(settings.options, { databases: "a,b" });
  });

  test("make backup with a bad config exits 2, lists every problem and creates nothing", () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "composure-badconfig-"));
    const file = path.join(dir, "composure.yml");
    writeFileSync(file, "destinaton: x\nlock: { timeout_seconds: -1 }\nservices:\n  db: { strategy: postgress, tier: gold }\n");
    const result = spawnSync(process.execPath, ["--import", "tsx", "scripts/backup.ts"], {
      cwd: path.resolve(import.meta.dirname, "../.."),
      env: { ...process.env, CONFIG: file, PROJECT: "nothing", DESTINATION: path.join(dir, "out") },
      encoding: "utf8",
    });
    assert.equal(result.status, 2, result.stderr);
    assert.match(result.stderr, /invalid configuration \(4 problems\)/);
    for (const fragment of ["destinaton", "lock.timeout_seconds", "services.db.strategy", "services.db.tier"]) assert.match(result.stderr, new RegExp(fragment.replace(".", "\\.")));
    assert.ok(!existsSync(path.join(dir, "out")));
  });
});

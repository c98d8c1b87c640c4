// The database strategies without Docker: image detection, options as labels give them (strings),
// the re-runnable globals script, connection strings, artifact names and fact comparison.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { isMariadbImage, mariadbOptions, quoteName, quoteString } from "../../scripts/lib/strategies/mariadb/index.ts";
import { artifactBaseName, boundTableFacts, compareTableFacts, imagePath, isMissingTool, tableFacts } from "../../scripts/lib/strategies/shared/in-container.ts";
import { conninfo, idempotentGlobals, isPostgresImage, postgresOptions } from "../../scripts/lib/strategies/postgres/index.ts";
import { mountFor, sqliteOptions, sqliteUri } from "../../scripts/lib/strategies/sqlite/index.ts";
import { detectStrategy } from "../../scripts/lib/strategies/registry.ts";

const service = (image: string) => ({ project: "p", name: "s", image, labels: {}, containers: [], dependsOn: [] });

describe("database strategies", () => {
  test("postgres is detected from the official, bitnami, timescale, postgis and fixture images", () => {
    for (const image of ["postgres", "postgres:16-alpine", "docker.io/library/postgres:15", "registry.local:5000/postgres@sha256:abc", "bitnami/postgresql:15", "timescale/timescaledb:latest-pg15", "timescale/timescaledb-ha:pg16", "postgis/postgis:15-3.4", "composure-fixture/postgres:latest", "pgvector/pgvector:pg16"]) {
      assert.ok(isPostgresImage(image), image);
      assert.equal(detectStrategy(service(image)), "postgres", image);
    }
    for (const image of ["prometheuscommunity/postgres-exporter", "edoburu/pgbouncer", "dpage/pgadmin4", "postgrest/postgrest", "busybox"]) {
      assert.ok(!isPostgresImage(image), image);
    }
  });

  test("mariadb serves mariadb, mysql and percona images, and sqlite is never detected", () => {
    for (const image of ["mariadb:10.11", "mysql:8.0", "mysql/mysql-server:8.0", "bitnami/mariadb", "bitnami/mysql:8.4", "percona:8", "percona/percona-server:8.0", "composure-fixture/mariadb:latest"]) {
      assert.ok(isMariadbImage(image), image);
      assert.equal(detectStrategy(service(image)), "mariadb", image);
    }
    for (const image of ["prom/mysqld-exporter", "phpmyadmin", "adminer"]) assert.ok(!isMariadbImage(image), image);
    assert.equal(detectStrategy(service("composure-fixture/sqlite:latest")), "volume");
  });

  test("image paths drop the registry host, the tag and the digest", () => {
    assert.deepEqual(imagePath("localhost/a/b:1"), ["a", "b"]);
    assert.deepEqual(imagePath("registry:5000/team/postgres:15@sha256:0"), ["team", "postgres"]);
    assert.deepEqual(imagePath("Postgres"), ["postgres"]);
  });

  test("options arrive as label strings and are coerced; unknown ones are refused", () => {
    assert.deepEqual(postgresOptions.parse({ databases: "shop, ledger", jobs: "4", user: "app", password_env: "DB_PASSWORD" }), { databases: ["shop", "ledger"], jobs: 4, user: "app", password_env: "DB_PASSWORD" });
    assert.deepEqual(postgresOptions.parse({}), { jobs: 1 });
    assert.ok(!postgresOptions.safeParse({ jobs: "many" }).success);
    assert.ok(!postgresOptions.safeParse({ jobs: "0" }).success);
    assert.ok(!postgresOptions.safeParse({ password: "x" }).success, "no password option: it would land in labels and manifests");
    assert.ok(!postgresOptions.safeParse({ password_env: "not a name" }).success);
    assert.deepEqual(mariadbOptions.parse({ databases: ["a"] }), { databases: ["a"] });
    assert.ok(!mariadbOptions.safeParse({ databases: " , " }).success);
    assert.deepEqual(sqliteOptions.parse({ paths: "/data/app.db,/data/other.db" }), { paths: ["/data/app.db", "/data/other.db"] });
    assert.ok(!sqliteOptions.safeParse({}).success, "paths is required");
    assert.ok(!sqliteOptions.safeParse({ paths: "data/app.db" }).success, "paths are absolute");
    assert.ok(!sqliteOptions.safeParse({ paths: "/data/../etc/passwd" }).success);
  });

  test("globals become re-runnable: existing roles are kept, existing tablespaces skipped", () => {
    const dumped = [
      "SET default_transaction_read_only = off;",
      "CREATE ROLE postgres;",
      "ALTER ROLE postgres WITH SUPERUSER INHERIT CREATEROLE CREATEDB LOGIN REPLICATION BYPASSRLS;",
      'CREATE ROLE "Odd ""name""";',
      "CREATE TABLESPACE fast OWNER postgres LOCATION '/fast';",
      "CREATE TABLESPACE \"new one\" OWNER postgres LOCATION '/new';",
    ].join("\n");
    const script = idempotentGlobals(dumped, ["fast"]).split("\n");
    assert.equal(script[0], "SET default_transaction_read_only = off;");
    assert.equal(script[1], "DO $composure$ BEGIN CREATE ROLE postgres; EXCEPTION WHEN duplicate_object THEN NULL; END $composure$;");
    assert.equal(script[2], dumped.split("\n")[2], "ALTER ROLE gives the backup's attributes");
    assert.match(script[3], /CREATE ROLE "Odd ""name"""; EXCEPTION/);
    assert.equal(script[4], "-- tablespace fast exists already");
    assert.equal(script[5], dumped.split("\n")[5]);
  });

  test("names are quoted so that any database name is taken literally", () => {
    assert.equal(conninfo("shop"), "dbname='shop'");
    assert.equal(conninfo("it's = odd\\"), "dbname='it\\'s = odd\\\\'");
    assert.equal(quoteName("we`ird"), "`we``ird`");
    assert.equal(quoteString("it's \\"), "'it\\'s \\\\'");
    assert.equal(sqliteUri("/data/a?b#c%d.db"), "file:/data/a%3fb%23c%25d.db?mode=rw");
  });

  test("artifact names are the database name when it is plain, else a safe form with a hash", () => {
    assert.equal(artifactBaseName("shop"), "shop");
    assert.equal(artifactBaseName("app.db"), "app.db");
    const odd = artifactBaseName("../weird name/é");
    assert.match(odd, /^[A-Za-z0-9._-]+-[0-9a-f]{8}$/);
    assert.ok(!odd.startsWith("."));
    assert.notEqual(artifactBaseName("a b"), artifactBaseName("a_b"));
  });

  test("recorded and live table facts are compared table by table", () => {
    const recorded = tableFacts({ "public.a": 10, "public.b": 5 }, 2);
    assert.deepEqual(recorded, { tables: 2, rows: 15, counts: { "public.a": 10, "public.b": 5 }, complete: true });
    assert.deepEqual(compareTableFacts("shop", recorded, tableFacts({ "public.a": 10, "public.b": 5 }, 2)), []);
    assert.deepEqual(compareTableFacts("shop", recorded, tableFacts({ "public.a": 9 }, 1)), [
      "shop: 1 tables, recorded 2",
      "shop: table public.a has 9 rows, recorded 10",
      "shop: table public.b is missing (recorded 5 rows)",
    ]);
    assert.deepEqual(compareTableFacts("shop", recorded, undefined), ["shop: missing"]);
    assert.equal(tableFacts({ a: 1 }, 300).complete, false);
  });

  test("a program missing from an image is told apart from a failing one", () => {
    assert.ok(isMissingTool({ exitCode: 126, stdout: 'OCI runtime exec failed: exec failed: unable to start container process: exec: "pg_dump": executable file not found in $PATH: unknown', stderr: "" }));
    assert.ok(!isMissingTool({ exitCode: 1, stdout: "", stderr: "pg_dump: error: connection failed" }));
    assert.ok(!isMissingTool({ exitCode: 127, stdout: "", stderr: "something else entirely" }));
  });

  test("a database file belongs to the deepest mount that holds it", () => {
    const mounts = [
      { type: "volume" as const, source: "data", destination: "/data", readOnly: false },
      { type: "volume" as const, source: "deep", destination: "/data/deep", readOnly: false },
      { type: "bind" as const, source: "/host/file.db", destination: "/etc/file.db", readOnly: false },
    ];
    assert.equal(mountFor(mounts, "/data/app.db")?.source, "data");
    assert.equal(mountFor(mounts, "/data/deep/x.db")?.source, "deep");
    assert.equal(mountFor(mounts, "/etc/file.db")?.source, "/host/file.db");
    assert.equal(mountFor(mounts, "/database/x.db"), undefined);
  });

  test("a table written to during a dump is recorded with bounds, and a live count within them agrees", () => {
    const facts = boundTableFacts(tableFacts({ ticks: 270, entries: 5000 }, 2), tableFacts({ ticks: 291, entries: 5000 }, 2));
    assert.deepEqual(facts.bounds, { ticks: [270, 291] });
    assert.equal(facts.counts.entries, 5000);
    assert.deepEqual(compareTableFacts("ledger", facts, tableFacts({ ticks: 283, entries: 5000 }, 2)), []);
    assert.deepEqual(compareTableFacts("ledger", facts, tableFacts({ ticks: 292, entries: 4999 }, 2)), [
      "ledger: table ticks has 292 rows, recorded between 270 and 291 (written to during the dump)",
      "ledger: table entries has 4999 rows, recorded 5000",
    ]);
    assert.equal(boundTableFacts(tableFacts({ a: 1 }, 1), tableFacts({ a: 1 }, 1)).bounds, undefined);
  });
});

// Cassandra from the tests: cqlsh through docker exec, waiting for a ring, and per-table checksums.
import { docker, fixtureImage, sh, takeTurn, whenNoneRuns } from "./composure.ts";

/** Statements through cqlsh's stdin inside the container. */
export const cql = (container: string, statements: string) => sh("docker", ["exec", "-i", container, "cqlsh", "--request-timeout=120"], statements);

/** Waits until `nodetool status` on the container shows `nodes` nodes Up/Normal. */
export async function waitForRing(container: string, nodes: number, timeoutMs = 300_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const status = await docker("exec", container, "nodetool", "status").catch(() => "");
    if ((status.match(/^UN /gm) ?? []).length === nodes) return;
    if (Date.now() > deadline) throw new Error(`the ring of ${container} has not ${nodes} nodes up and normal: ${status}`);
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
}

/**
 * Per table: "<rows> <sha256 of the sorted rows>" (cqlsh COPY TO, read at consistency ALL: every
 * replica answers), or "missing". Equal strings, equal content.
 */
export async function tableChecksums(container: string, tables: string[]): Promise<Record<string, string>> {
  const copies = tables.map((table) => `COPY ${table} TO '/tmp/check-${table}.csv' WITH NUMPROCESSES = 1;`).join("\n");
  await sh("docker", ["exec", "-i", container, "sh", "-c", "rm -f /tmp/check-*.csv; cqlsh --request-timeout=120 > /dev/null 2>&1; true"], `CONSISTENCY ALL;\n${copies}\n`);
  const script = tables.map((table) => `f=/tmp/check-${table}.csv; if [ -f $f ]; then echo "${table} $(wc -l < $f) $(sort $f | sha256sum | cut -c1-16)"; else echo "${table} missing"; fi`).join("; ");
  const output = await docker("exec", container, "sh", "-c", script);
  return Object.fromEntries(output.split("\n").map((line) => [line.split(" ")[0], line.split(" ").slice(1).join(" ")]));
}

/** A Cassandra node service of the fixture image for an inline compose file, ready once CQL listens; `extra` continues its environment. */
export function cassandraNode(name: string, settings: { cluster: string; seed: string; heap: string; labels?: string; extra?: string }): string {
  return `
  ${name}:
    image: ${fixtureImage("cassandra")}
    hostname: ${name}
    stop_grace_period: 30s${settings.labels ? `\n    labels: ${settings.labels}` : ""}
    environment:
      CASSANDRA_CLUSTER_NAME: ${settings.cluster}
      CASSANDRA_SEEDS: ${settings.seed}
      CASSANDRA_NUM_TOKENS: "16"
      MAX_HEAP_SIZE: ${settings.heap}
      HEAP_NEWSIZE: 128M${settings.extra ?? ""}
    healthcheck:
      test: ["CMD", "bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/9042"]
      interval: 2s
      timeout: 3s
      retries: 150
      start_period: 300s
    volumes: ["${name}-data:/var/lib/cassandra"]`;
}

/** The machine's Cassandra turn (one ring at a time on 2 cores), once no other ring runs; returns its release. */
export async function cassandraTurn(): Promise<() => void> {
  const release = await takeTurn("cassandra");
  await whenNoneRuns(fixtureImage("cassandra"));
  return release;
}

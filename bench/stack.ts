// The bench's Compose project `composure-bench`: one service per dataset, so each backup is one
// SERVICE= of the same project. Created fresh at the start (leftovers of an interrupted run are
// removed first) and removed at the end with its volumes, by name. The JVM engines (Cassandra,
// OpenSearch) start only for their own part and are removed after it, so they take no CPU or
// memory from the other measurements.
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { busyboxImage, cassandraImage, docker, opensearchImage, postgresImage, run, say } from "./common.ts";

export const projectName = "composure-bench";

export type ServiceKind = "busybox" | "postgres" | "cassandra" | "opensearch";

export interface ServiceSpec {
  /** Compose service name. */
  name: string;
  /** Compose name of its data volume (Docker's name is `composure-bench_<volume>`). */
  volume: string;
  kind: ServiceKind;
}

const onDemand = (service: ServiceSpec) => service.kind === "cassandra" || service.kind === "opensearch";

/** OpenSearch's snapshot repository (path.repo) is a second volume, next to its data. */
export const repositoryVolume = (service: ServiceSpec) => `${service.volume}-repo`;

/** Every volume a service declares. */
export const volumesOf = (service: ServiceSpec) => (service.kind === "opensearch" ? [service.volume, repositoryVolume(service)] : [service.volume]);

function composeBlock(service: ServiceSpec, postgresPassword: string): string[] {
  const head = [`  ${service.name}:`];
  switch (service.kind) {
    case "postgres":
      return [
        ...head,
        `    image: ${postgresImage}`,
        `    environment: { POSTGRES_PASSWORD: "${postgresPassword}", POSTGRES_DB: bench }`,
        `    volumes: ["${service.volume}:/var/lib/postgresql/data"]`,
        "    shm_size: 256m",
      ];
    case "cassandra":
      // One node, configured as in test/images/cassandra/compose.yml.
      return [
        ...head,
        `    image: ${cassandraImage}`,
        `    hostname: ${service.name}`,
        "    stop_grace_period: 60s",
        `    environment: { CASSANDRA_CLUSTER_NAME: composure-bench, CASSANDRA_SEEDS: ${service.name}, CASSANDRA_NUM_TOKENS: "16", MAX_HEAP_SIZE: 1G, HEAP_NEWSIZE: 128M }`,
        `    volumes: ["${service.volume}:/var/lib/cassandra"]`,
      ];
    case "opensearch":
      // One node with its snapshot repository on its own volume (path.repo), the API published
      // on 127.0.0.1 only (a random port) for the bulk loader.
      return [
        ...head,
        `    image: ${opensearchImage}`,
        `    environment: ["cluster.name=composure-bench", "node.name=${service.name}", "discovery.type=single-node", "path.repo=/snapshots", "bootstrap.memory_lock=false", "OPENSEARCH_JAVA_OPTS=-Xms1g -Xmx1g"]`,
        '    ports: ["127.0.0.1::9200"]',
        `    volumes: ["${service.volume}:/usr/share/opensearch/data", "${repositoryVolume(service)}:/snapshots"]`,
      ];
    default:
      return [...head, `    image: ${busyboxImage}`, "    init: true", '    command: ["sleep", "1000000"]', `    volumes: ["${service.volume}:/data"]`];
  }
}

let composeCommand: string[] | undefined;
async function compose(): Promise<string[]> {
  if (composeCommand) return composeCommand;
  const v2 = await run("docker", ["compose", "version"], { allowFailure: true, timeoutMs: 30_000, cleanup: true }).catch(() => undefined);
  composeCommand = v2?.code === 0 ? ["docker", "compose"] : ["docker-compose"];
  return composeCommand;
}

export class BenchStack {
  readonly file: string;
  /** The postgres superuser's password (only in the compose file in the work dir, mode 0600). */
  readonly postgresPassword = randomBytes(12).toString("hex");

  /** `knownVolumes`: every volume any bench run may create, removed by name even when this run did not declare it. */
  constructor(work: string, readonly services: ServiceSpec[], private readonly knownVolumes: string[] = []) {
    this.file = path.join(work, "compose.yml");
    const blocks = services.flatMap((service) => composeBlock(service, this.postgresPassword));
    const volumes = services.flatMap(volumesOf).map((volume) => `${volume}: {}`).join(", ");
    writeFileSync(this.file, `version: "3.8"\nservices:\n${blocks.join("\n")}\nvolumes: { ${volumes} }\n`, { mode: 0o600 });
  }

  volumeName = (volume: string) => `${projectName}_${volume}`;

  private async compose(...args: string[]): Promise<string> {
    const [command, ...prefix] = await compose();
    return (await run(command, [...prefix, "-p", projectName, "-f", this.file, ...args], { timeoutMs: 600_000, cleanup: args[0] === "down" })).stdout;
  }

  /** Starts every service but the JVM engines (see `start`). */
  async up(): Promise<void> {
    await this.down();
    const always = this.services.filter((service) => !onDemand(service)).map((service) => service.name);
    if (always.length) await this.compose("up", "-d", ...always);
  }

  async start(service: string): Promise<void> {
    await this.compose("up", "-d", service);
  }

  /** Stops and removes one service's container (its volumes go with the project). */
  async remove(service: string): Promise<void> {
    await this.compose("rm", "--stop", "--force", service);
  }

  /** Where a published port of a service listens on the host, as "127.0.0.1:<port>". */
  async published(service: string, port: number): Promise<string> {
    return (await this.compose("port", service, String(port))).trim();
  }

  /** Removes the project's containers, then its volumes by name (and the bench's helpers). */
  async down(): Promise<void> {
    if (this.services.length) await this.compose("down", "-v", "--remove-orphans").catch((error) => say(`compose down: ${(error as Error).message}`));
    for (const volume of new Set([...this.services.flatMap(volumesOf), ...this.knownVolumes])) {
      await run("docker", ["volume", "rm", "-f", this.volumeName(volume)], { allowFailure: true, timeoutMs: 120_000, cleanup: true });
    }
  }

  async containerId(service: string): Promise<string> {
    return (await this.compose("ps", "-q", service)).trim().split("\n")[0];
  }

  async mountpoint(volume: string): Promise<string> {
    return docker("volume", "inspect", "-f", "{{.Mountpoint}}", this.volumeName(volume));
  }
}

/** Helper containers of the bench are named, so an interrupted run can remove them by name. */
let helperCount = 0;
export const helperName = () => `composure-bench-helper-${process.pid}-${++helperCount}`;

export async function removeHelpers(): Promise<void> {
  for (let index = 1; index <= helperCount; index++) {
    await run("docker", ["rm", "-f", `composure-bench-helper-${process.pid}-${index}`], { allowFailure: true, timeoutMs: 60_000, cleanup: true }).catch(() => undefined);
  }
}

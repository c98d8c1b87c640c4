// The bench's Compose project `composure-bench`: one service per dataset, so each backup is one
// SERVICE= of the same project. Created fresh at the start (leftovers of an interrupted run are
// removed first) and removed at the end with its volumes, by name. The JVM engines (Cassandra,
// OpenSearch) start only for their own part and are removed after it, so they take no CPU or
// memory from the other measurements. ComposeStack is any bench project by name (the stack
// section's is composure-bench-stack, bench/reference-stack.ts); the service blocks are shared.
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

export interface CassandraNode {
  cluster: string;
  seeds: string;
  heap: string;
  volume: string;
  /** A node that joins an existing ring: no bootstrap (the ring is empty), started once `after` answers CQL. */
  after?: string;
}

/** A Cassandra node of the fixture image, configured as in test/images/cassandra/compose.yml; healthy once CQL listens. */
export function cassandraBlock(name: string, node: CassandraNode): string[] {
  const joining = node.after ? [`    depends_on: { ${node.after}: { condition: service_healthy } }`] : [];
  return [
    `  ${name}:`,
    `    image: ${cassandraImage}`,
    `    hostname: ${name}`,
    "    stop_grace_period: 60s",
    `    environment: { CASSANDRA_CLUSTER_NAME: ${node.cluster}, CASSANDRA_SEEDS: ${node.seeds}, CASSANDRA_NUM_TOKENS: "16", MAX_HEAP_SIZE: ${node.heap}, HEAP_NEWSIZE: 128M${node.after ? ', CASSANDRA_AUTO_BOOTSTRAP: "false"' : ""} }`,
    '    healthcheck: { test: ["CMD", "bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/9042"], interval: 5s, timeout: 3s, retries: 120, start_period: 300s }',
    ...joining,
    `    volumes: ["${node.volume}:/var/lib/cassandra"]`,
  ];
}

export interface OpenSearchNode {
  cluster: string;
  /** Every node of the cluster (discovery); one name: a single-node cluster. */
  nodes: string[];
  heap: string;
  volume: string;
  /** The snapshot repository (path.repo /snapshots), shared by every node of a cluster. */
  repository: string;
  /** Publish the API on 127.0.0.1 (a random port) for the bulk loader. */
  publish?: boolean;
}

/** An OpenSearch node of the fixture image with its snapshot repository under path.repo. */
export function openSearchBlock(name: string, node: OpenSearchNode): string[] {
  const discovery = node.nodes.length === 1 ? ['"discovery.type=single-node"'] : [`"discovery.seed_hosts=${node.nodes}"`, `"cluster.initial_cluster_manager_nodes=${node.nodes}"`];
  return [
    `  ${name}:`,
    `    image: ${opensearchImage}`,
    `    hostname: ${name}`,
    `    environment: ["cluster.name=${node.cluster}", "node.name=${name}", ${discovery.join(", ")}, "path.repo=/snapshots", "bootstrap.memory_lock=false", "OPENSEARCH_JAVA_OPTS=-Xms${node.heap} -Xmx${node.heap}"]`,
    ...(node.publish ? ['    ports: ["127.0.0.1::9200"]'] : []),
    `    volumes: ["${node.volume}:/usr/share/opensearch/data", "${node.repository}:/snapshots"]`,
  ];
}

/** A busybox service that only holds its volume (stop mode: the volume strategy stops it). */
export const busyboxBlock = (name: string, volume: string, mountPath = "/data", extra: string[] = []) => [`  ${name}:`, `    image: ${busyboxImage}`, "    init: true", '    command: ["sleep", "1000000"]', ...extra, `    volumes: ["${volume}:${mountPath}"]`];

function composeBlock(service: ServiceSpec, postgresPassword: string): string[] {
  switch (service.kind) {
    case "postgres":
      return [
        `  ${service.name}:`,
        `    image: ${postgresImage}`,
        `    environment: { POSTGRES_PASSWORD: "${postgresPassword}", POSTGRES_DB: bench }`,
        `    volumes: ["${service.volume}:/var/lib/postgresql/data"]`,
        "    shm_size: 256m",
      ];
    case "cassandra":
      return cassandraBlock(service.name, { cluster: projectName, seeds: service.name, heap: "1G", volume: service.volume });
    case "opensearch":
      return openSearchBlock(service.name, { cluster: projectName, nodes: [service.name], heap: "1g", volume: service.volume, repository: repositoryVolume(service), publish: true });
    default:
      return busyboxBlock(service.name, service.volume);
  }
}

/** A Compose file with these service blocks and named volumes. */
export const composeFile = (blocks: string[][], volumes: string[]) => `version: "3.8"\nservices:\n${blocks.flat().join("\n")}\nvolumes: { ${volumes.map((volume) => `${volume}: {}`).join(", ")} }\n`;

let composeCommand: string[] | undefined;
async function compose(): Promise<string[]> {
  if (composeCommand) return composeCommand;
  const v2 = await run("docker", ["compose", "version"], { allowFailure: true, timeoutMs: 30_000, cleanup: true }).catch(() => undefined);
  composeCommand = v2?.code === 0 ? ["docker", "compose"] : ["docker-compose"];
  return composeCommand;
}

/**
 * A Compose project of the bench, by name: created fresh (leftovers of an interrupted run removed
 * first) and removed with its volumes, by name, even those a run did not declare (`knownVolumes`).
 */
export class ComposeStack {
  constructor(readonly project: string, readonly file: string, private readonly knownVolumes: string[]) {}

  volumeName = (volume: string) => `${this.project}_${volume}`;

  /** A project without services has nothing for `compose down` to do (and Compose refuses its file). */
  protected get hasServices(): boolean {
    return true;
  }

  protected async compose(...args: string[]): Promise<string> {
    const [command, ...prefix] = await compose();
    return (await run(command, [...prefix, "-p", this.project, "-f", this.file, ...args], { timeoutMs: 600_000, cleanup: args[0] === "down" })).stdout;
  }

  /** Starts these services (all of them: none named), waiting for those their dependents wait for. */
  async start(...services: string[]): Promise<void> {
    await this.compose("up", "-d", ...services);
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
    if (this.hasServices) await this.compose("down", "-v", "--remove-orphans").catch((error) => say(`compose down ${this.project}: ${(error as Error).message}`));
    for (const volume of new Set(this.knownVolumes)) {
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

/** The project `composure-bench`: one service per dataset of the sections that run. */
export class BenchStack extends ComposeStack {
  /** The postgres superuser's password (only in the compose file in the work dir, mode 0600). */
  readonly postgresPassword = randomBytes(12).toString("hex");

  /** `knownVolumes`: every volume any bench run may create, removed by name even when this run did not declare it. */
  constructor(work: string, readonly services: ServiceSpec[], knownVolumes: string[] = []) {
    super(projectName, path.join(work, "compose.yml"), [...services.flatMap(volumesOf), ...knownVolumes]);
    const blocks = services.map((service) => composeBlock(service, this.postgresPassword));
    writeFileSync(this.file, composeFile(blocks, services.flatMap(volumesOf)), { mode: 0o600 });
  }

  protected override get hasServices(): boolean {
    return this.services.length > 0;
  }

  /** Starts every service but the JVM engines (see `start`). */
  async up(): Promise<void> {
    await this.down();
    const always = this.services.filter((service) => !onDemand(service)).map((service) => service.name);
    if (always.length) await this.start(...always);
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

// The bench's Compose project `composure-bench`: one service per dataset, so each backup is one
// SERVICE= of the same project. Created fresh at the start (leftovers of an interrupted run are
// removed first) and removed at the end with its volumes, by name.
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { busyboxImage, docker, postgresImage, run, say } from "./common.ts";

export const projectName = "composure-bench";

export interface ServiceSpec {
  /** Compose service name. */
  name: string;
  /** Compose volume name (Docker's name is `composure-bench_<volume>`). */
  volume: string;
  kind: "busybox" | "postgres";
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
    const blocks = services.map((service) => {
      if (service.kind === "postgres") {
        return [
          `  ${service.name}:`,
          `    image: ${postgresImage}`,
          `    environment: { POSTGRES_PASSWORD: "${this.postgresPassword}", POSTGRES_DB: bench }`,
          `    volumes: ["${service.volume}:/var/lib/postgresql/data"]`,
          "    shm_size: 256m",
        ].join("\n");
      }
      return [`  ${service.name}:`, `    image: ${busyboxImage}`, "    init: true", '    command: ["sleep", "1000000"]', `    volumes: ["${service.volume}:/data"]`].join("\n");
    });
    const volumes = services.map((service) => `${service.volume}: {}`).join(", ");
    writeFileSync(this.file, `version: "3.8"\nservices:\n${blocks.join("\n")}\nvolumes: { ${volumes} }\n`, { mode: 0o600 });
  }

  volumeName = (volume: string) => `${projectName}_${volume}`;

  private async compose(...args: string[]): Promise<string> {
    const [command, ...prefix] = await compose();
    return (await run(command, [...prefix, "-p", projectName, "-f", this.file, ...args], { timeoutMs: 600_000, cleanup: args[0] === "down" })).stdout;
  }

  async up(): Promise<void> {
    await this.down();
    if (this.services.length) await this.compose("up", "-d");
  }

  /** Removes the project's containers, then its volumes by name (and the bench's helpers). */
  async down(): Promise<void> {
    if (this.services.length) await this.compose("down", "-v", "--remove-orphans").catch((error) => say(`compose down: ${(error as Error).message}`));
    for (const volume of new Set([...this.services.map((service) => service.volume), ...this.knownVolumes])) {
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

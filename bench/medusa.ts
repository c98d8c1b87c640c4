// cassandra-medusa, the backup tool Cassandra operators run, as composure's peer on the bench's own
// node and table. Its pinned wheels (bench/medusa-requirements.txt) are downloaded on the host with
// pip (cached, like the fixture's cqlsh wheels), unpacked, and copied into the running node with a
// medusa.ini for local storage inside the container; copying is not timed, each backup is (docker
// exec wall time, from the host). What cannot be installed or run is reported with the reason.
import { createHash } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { lastLines, removeDir, root, round, run, say, versionOf } from "./common.ts";
import { benchLogs } from "./composure.ts";

const requirements = path.join(root, "bench", "medusa-requirements.txt");
const medusaVersion = /^cassandra-medusa==(\S+)$/m.exec(readFileSync(requirements, "utf8"))?.[1] ?? "?";
/** In the container's own layer: removed with the node. */
const storage = "/var/lib/medusa-backups";
const libDir = "/opt/medusa-lib";

// Local storage; everything else is medusa's default (one file copied at a time: concurrent_transfers = 1).
const ini = `[cassandra]
config_file = /etc/cassandra/cassandra.yaml
use_sudo = False

[storage]
storage_provider = local
base_path = ${storage}
bucket_name = bench
`;
// Appended to sys.path, after the standard library: the wheels never shadow it.
const wrapper = `#!/bin/sh
exec python3 -c 'import sys; sys.path.append("${libDir}"); sys.argv[0] = "medusa"; from medusa.medusacli import cli; cli()' "$@"
`;

// The fixture's python3 is Debian bookworm's CPython 3.11 on x86_64 (glibc 2.36).
const pipDownload = ["-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-cache-dir", "--no-deps", "--only-binary=:all:", "--implementation", "cp", "--python-version", "3.11"];
const platforms = ["manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64", "any"].flatMap((platform) => ["--platform", platform]);

/** medusa's wheels unpacked on the host, cached by the requirements' hash; or why they are not. */
async function unpackedWheels(): Promise<{ dir?: string; reason?: string }> {
  const hash = createHash("sha256").update(readFileSync(requirements)).digest("hex").slice(0, 12);
  const dir = path.join(process.env.COMPOSURE_CACHE || path.join(os.homedir(), ".cache", "composure"), `medusa-${hash}`);
  if (existsSync(path.join(dir, ".complete"))) return { dir };
  if (!(await versionOf("python3", ["-m", "pip", "--version"]))) return { reason: "python3 with pip is not installed on the host (pip downloads medusa's wheels)" };
  const [tmp, wheels] = [`${dir}.tmp`, `${dir}.tmp/wheels`];
  removeDir(tmp);
  mkdirSync(wheels, { recursive: true });
  say(`cassandra: pip download of cassandra-medusa ${medusaVersion} and its pinned dependencies`);
  const download = await run("python3", [...pipDownload, ...platforms, "-r", requirements, "-d", wheels], { allowFailure: true, timeoutMs: 900_000 });
  if (download.code !== 0) return { reason: `pip download of cassandra-medusa ${medusaVersion}'s pinned wheels failed (exit ${download.code}): ${lastLines(download.stderr || download.stdout, 2)}` };
  const files = readdirSync(wheels).map((name) => path.join(wheels, name));
  await run("python3", ["-c", "import sys, zipfile\nfor wheel in sys.argv[2:]: zipfile.ZipFile(wheel).extractall(sys.argv[1])", path.join(tmp, "lib"), ...files]);
  removeDir(wheels);
  writeFileSync(path.join(tmp, ".complete"), "");
  removeDir(dir);
  renameSync(tmp, dir);
  return { dir };
}

export interface MedusaFigures {
  medusa_version?: string;
  /** Set when medusa was not measured (or only its first backup): why. */
  medusa_not_measured?: string;
  medusa_first_s?: number;
  medusa_first_bytes?: number;
  medusa_second_s?: number;
  medusa_second_added_bytes?: number;
}

/** medusa installed in one node; its backups into local storage, each timed; a failure is kept as the reason. */
export class MedusaPeer {
  readonly figures: MedusaFigures = {};

  private constructor(private readonly container: string, private readonly timeoutMs: number) {}

  /** Copies medusa into the running node (not timed) and checks that it starts there. */
  static async install(container: string, work: string, timeoutMs: number): Promise<MedusaPeer> {
    const peer = new MedusaPeer(container, timeoutMs);
    try {
      await peer.copyInto(work);
    } catch (error) {
      peer.notMeasured(`installing medusa ${medusaVersion} failed: ${lastLines((error as Error).message, 2)}`);
    }
    return peer;
  }

  private async copyInto(work: string): Promise<void> {
    const { container, timeoutMs } = this;
    const wheels = await unpackedWheels();
    if (!wheels.dir) return void this.notMeasured(wheels.reason!);
    const files = path.join(work, "medusa-files");
    mkdirSync(files, { recursive: true });
    writeFileSync(path.join(files, "medusa.ini"), ini);
    writeFileSync(path.join(files, "medusa"), wrapper);
    chmodSync(path.join(files, "medusa"), 0o755);
    await run("docker", ["cp", `${path.join(wheels.dir, "lib")}/.`, `${container}:${libDir}`], { timeoutMs });
    await run("docker", ["cp", path.join(files, "medusa"), `${container}:/usr/local/bin/medusa`], { timeoutMs });
    await run("docker", ["exec", container, "mkdir", "-p", "/etc/medusa", storage], { timeoutMs });
    await run("docker", ["cp", path.join(files, "medusa.ini"), `${container}:/etc/medusa/medusa.ini`], { timeoutMs });
    const started = await run("docker", ["exec", container, "medusa", "--version"], { allowFailure: true, timeoutMs });
    if (started.code !== 0) return void this.notMeasured(`medusa ${medusaVersion} does not start in the node (exit ${started.code}): ${lastLines(started.stderr || started.stdout, 2)}`);
    this.figures.medusa_version = started.stdout.trim() || medusaVersion;
  }

  /**
   * One `medusa backup` in differential mode, medusa's incremental storage (each SSTable stored
   * once): the first copies every file, the second only new ones. A full-mode backup is no base for
   * it (a differential backup after one copies everything again).
   */
  async backup(which: "first" | "second"): Promise<void> {
    if (!this.figures.medusa_version || this.figures.medusa_not_measured) return;
    const before = await this.storedBytes();
    const result = await run("docker", ["exec", this.container, "medusa", "backup", `--backup-name=${which}`, "--mode=differential"], { allowFailure: true, timeoutMs: this.timeoutMs });
    writeFileSync(path.join(benchLogs(), `cassandra-medusa-${which}.log`), `${result.stdout}${result.stderr}`);
    if (result.code !== 0) return void this.notMeasured(`medusa backup (${which}) exited with ${result.code}: ${lastLines(result.stderr || result.stdout, 2)}`);
    const added = (await this.storedBytes()) - before;
    if (which === "first") Object.assign(this.figures, { medusa_first_s: round(result.seconds), medusa_first_bytes: added });
    else Object.assign(this.figures, { medusa_second_s: round(result.seconds), medusa_second_added_bytes: added });
  }

  private async storedBytes(): Promise<number> {
    return Number((await run("docker", ["exec", this.container, "du", "-sb", storage], { timeoutMs: this.timeoutMs })).stdout.split("\t")[0]);
  }

  private notMeasured(reason: string): void {
    this.figures.medusa_not_measured = reason;
    say(`cassandra: medusa not measured: ${reason}`);
  }
}

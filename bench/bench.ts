// make bench: one run on generated data, printing absolute times and the ratios the issues ask
// for, and writing bench/results.json. Data is deterministic (seeded), sized by BENCH_SIZE (GB).
//   volume: raw read (busybox tar | cat in a helper), the classic recipe (docker run busybox
//   tar czf to a bind mount), composure backup and restore, composure's peak RSS.
import { execFileSync, spawn } from "node:child_process";
import { createCipheriv } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, createWriteStream, statSync, readdirSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { once } from "node:events";

const root = path.resolve(import.meta.dirname, "..");
const busybox = process.env.COMPOSURE_IMAGE_BUSYBOX ?? "composure-fixture/busybox:latest";
const sizeGb = Number(process.env.BENCH_SIZE ?? "1");
const project = "composure-bench";
const volume = `${project}_data`;
const work = mkdtempSync(path.join(os.tmpdir(), "composure-bench-"));

const docker = (...args: string[]) => execFileSync("docker", args, { encoding: "utf8", maxBuffer: 64 << 20 }).trim();
const seconds = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e9;
function timed(action: () => void): number {
  const start = process.hrtime.bigint();
  action();
  return seconds(start);
}

/** A deterministic byte stream: AES-256-CTR over zeros with a fixed key. */
function pseudoRandom(bytes: number, seed: number): Buffer {
  const key = Buffer.alloc(32, seed);
  return createCipheriv("aes-256-ctr", key, Buffer.alloc(16)).update(Buffer.alloc(bytes));
}

async function writeText(file: string, bytes: number): Promise<void> {
  const out = createWriteStream(file);
  const words = ["alpha", "beta", "gamma", "delta", "order", "customer", "status", "shipped", "pending", "total", "amount", "EUR", "note"];
  let written = 0;
  let counter = 0;
  while (written < bytes) {
    const lines: string[] = [];
    for (let index = 0; index < 2000; index++) {
      counter++;
      const word = words[(counter * 7919) % words.length];
      lines.push(`{"id":${counter},"customer":"${word}-${counter % 9973}","status":"${words[counter % words.length]}","amount":${(counter * 31) % 100000 / 100},"tags":["${word}","${words[(counter * 13) % words.length]}"]}`);
    }
    const chunk = `${lines.join("\n")}\n`;
    written += chunk.length;
    if (!out.write(chunk)) await once(out, "drain");
  }
  out.end();
  await once(out, "close");
}

/** ~60% JSON-like text, ~30% random bytes, 20,000 small files (scaled by BENCH_SIZE). */
async function generate(dir: string): Promise<void> {
  const total = sizeGb * 1024 ** 3;
  await writeText(path.join(dir, "orders.jsonl"), total * 0.6);
  const randomDir = path.join(dir, "blobs");
  mkdirSync(randomDir);
  const blobBytes = total * 0.3;
  for (let index = 0; index < 12; index++) writeFileSync(path.join(randomDir, `blob-${index}.bin`), pseudoRandom(Math.floor(blobBytes / 12), index + 1));
  const small = Math.round(20000 * Math.min(sizeGb, 1));
  for (let index = 0; index < small; index++) {
    const sub = path.join(dir, "small", String(index % 100));
    if (index < 100) mkdirSync(sub, { recursive: true });
    writeFileSync(path.join(sub, `f${index}.json`), `{"file":${index},"payload":"${"x".repeat(index % 4000)}"}\n`);
  }
}

function composure(script: string, env: Record<string, string>): { seconds: number; peakRssMb: number; cpuSeconds: number } {
  const statsFile = path.join(work, `${script}-stats.json`);
  const elapsed = timed(() =>
    execFileSync(process.execPath, ["--import", "tsx", path.join(root, "scripts", `${script}.ts`)], {
      cwd: root,
      stdio: ["ignore", "ignore", "inherit"],
      env: { ...process.env, PROJECT: project, DESTINATION: path.join(work, "backups"), COMPOSURE_HELPER_IMAGE: busybox, COMPOSURE_STATS_FILE: statsFile, ...env },
    }),
  );
  const stats = JSON.parse(readFileSync(statsFile, "utf8"));
  return { seconds: elapsed, ...stats };
}

function duBytes(dir: string): number {
  return Number(execFileSync("du", ["-sb", dir], { encoding: "utf8" }).split("\t")[0]);
}

async function main(): Promise<void> {
  docker("info", "--format", "{{.ServerVersion}}");
  execFileSync("bash", [path.join(root, "test/images/build.sh"), "busybox"], { stdio: "inherit" });
  const composeFile = path.join(work, "compose.yml");
  writeFileSync(composeFile, `version: "3.8"\nservices:\n  app:\n    image: ${busybox}\n    init: true\n    command: ["sleep", "1000000"]\n    volumes: ["data:/data"]\nvolumes: { data: {} }\n`);
  const compose = (...args: string[]) => execFileSync("docker-compose", ["-p", project, "-f", composeFile, ...args], { stdio: "ignore" });
  compose("down", "-v");
  compose("up", "-d");
  try {
    const mountpoint = docker("volume", "inspect", "-f", "{{.Mountpoint}}", volume);
    process.stderr.write(`generating ${sizeGb} GB of data in ${volume}...\n`);
    await generate(mountpoint);
    const volumeBytes = duBytes(mountpoint);
    const helper = ["run", "--rm", "--log-driver", "none", "-v", `${volume}:/v:ro`];
    const rawRead = timed(() => docker(...helper, busybox, "sh", "-c", "tar cf - -C /v . | cat > /dev/null"));
    const classicDir = path.join(work, "classic");
    mkdirSync(classicDir);
    const classic = timed(() => docker(...helper, "-v", `${classicDir}:/backup`, busybox, "tar", "czf", "/backup/backup.tar.gz", "-C", "/v", "."));
    const classicBytes = statSync(path.join(classicDir, "backup.tar.gz")).size;
    const backup = composure("backup", {});
    const runDir = path.join(work, "backups", project);
    const storedBytes = duBytes(runDir);
    const restore = composure("restore", { FORCE: "1", NO_RESCUE: "1" });
    const results = {
      machine: { cpus: os.cpus().length, memoryGb: Math.round(os.totalmem() / 1024 ** 3), kernel: os.release(), docker: docker("version", "--format", "{{.Server.Version}}"), node: process.version },
      volume: {
        size_gb: sizeGb,
        bytes: volumeBytes,
        raw_read_s: round(rawRead),
        classic_s: round(classic),
        classic_bytes: classicBytes,
        backup_s: round(backup.seconds),
        backup_cpu_s: round(backup.cpuSeconds),
        stored_bytes: storedBytes,
        restore_s: round(restore.seconds),
        peak_rss_mb: round(Math.max(backup.peakRssMb, restore.peakRssMb)),
        backup_vs_classic: round(classic / backup.seconds),
        backup_vs_raw_read: round(backup.seconds / rawRead),
        restore_vs_raw_read: round(restore.seconds / rawRead),
      },
    };
    mkdirSync(path.join(root, "bench"), { recursive: true });
    const resultsFile = path.join(root, "bench", "results.json");
    let previous: Record<string, unknown> = {};
    try {
      previous = JSON.parse(readFileSync(resultsFile, "utf8"));
    } catch {
      // first run
    }
    writeFileSync(resultsFile, `${JSON.stringify({ ...previous, ...results, measuredAt: new Date().toISOString() }, null, 2)}\n`);
    printTable(results.volume);
  } finally {
    compose("down", "-v");
    rmSync(work, { recursive: true, force: true });
  }
}

const round = (value: number) => Math.round(value * 100) / 100;

function printTable(volume: Record<string, number>): void {
  const gb = (bytes: number) => `${(bytes / 1024 ** 3).toFixed(2)} GB`;
  const rows = [
    ["volume", gb(volume.bytes), ""],
    ["raw read (tar | cat in a helper)", `${volume.raw_read_s} s`, "the limit"],
    ["classic: docker run busybox tar czf", `${volume.classic_s} s`, `${gb(volume.classic_bytes)} stored`],
    ["composure backup", `${volume.backup_s} s`, `${gb(volume.stored_bytes)} stored; ${volume.backup_vs_classic}x faster than classic (target >= 8); ${volume.backup_vs_raw_read}x raw read (target <= 2)`],
    ["composure restore", `${volume.restore_s} s`, `${volume.restore_vs_raw_read}x raw read (target <= 2.5)`],
    ["composure peak RSS", `${volume.peak_rss_mb} MB`, "target <= 200 MB"],
  ];
  for (const [name, value, note] of rows) process.stdout.write(`${name.padEnd(38)} ${value.padStart(10)}  ${note}\n`);
}

await main();

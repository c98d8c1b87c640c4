// Test support: a writer that keeps committing inside a container until told to stop, a watcher
// of every process's argv for secrets, and a search for secrets in a run's files (compressed
// ones decompressed).
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { $, type ProcessPromise } from "zx";
import { docker, sh } from "./composure.ts";

/** A shell loop inside `container` whose stdout feeds a SQL client; stopped through a flag file. */
export class Writer {
  private readonly writing: ProcessPromise;

  constructor(private readonly container: string, script: string) {
    this.writing = $({ quiet: true, nothrow: true, stdio: ["ignore", "pipe", "pipe"] })`docker exec ${container} sh -c ${`rm -f /tmp/stop-writer; ${script}`}`;
  }

  async stop(): Promise<void> {
    await docker("exec", this.container, "touch", "/tmp/stop-writer");
    const { exitCode, stdall } = await this.writing;
    if (exitCode !== 0) throw new Error(`the writer failed (exit ${exitCode ?? 1}): ${stdall.slice(-4000)}`);
  }
}

/** Reads /proc/<pid>/cmdline of every process (the host sees container processes too) every few ms. */
export function watchArgv(secrets: string[]): { stop(): Promise<{ scans: number; processes: number; hits: string[] }> } {
  let running = true;
  let scans = 0;
  const seen = new Set<number>();
  const hits: string[] = [];
  const needles = secrets.map((secret) => Buffer.from(secret));
  const scan = () => {
    for (const entry of readdirSync("/proc")) {
      if (!/^\d+$/.test(entry)) continue;
      let cmdline: Buffer;
      try {
        cmdline = readFileSync(`/proc/${entry}/cmdline`);
      } catch {
        continue; // gone already
      }
      seen.add(Number(entry));
      if (needles.some((needle) => cmdline.includes(needle))) hits.push(cmdline.toString().replace(/\0/g, " "));
    }
    scans += 1;
  };
  const loop = (async () => {
    while (running) {
      scan();
      await new Promise((resolve) => setTimeout(resolve, 3));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return { scans, processes: seen.size, hits };
    },
  };
}

/** Every file under `dir` (archives decompressed) that contains one of `secrets`. */
export async function filesContaining(dir: string, secrets: string[]): Promise<string[]> {
  const found: string[] = [];
  const walk = async (current: string) => {
    for (const name of readdirSync(current)) {
      const file = path.join(current, name);
      if (statSync(file).isDirectory()) {
        await walk(file);
        continue;
      }
      const contents = [readFileSync(file)];
      if (file.endsWith(".zst")) contents.push(Buffer.from(await sh("zstd", ["-dc", file]), "latin1"));
      if (contents.some((content) => secrets.some((secret) => content.includes(secret)))) found.push(file);
    }
  };
  if (existsSync(dir)) await walk(dir);
  return found;
}

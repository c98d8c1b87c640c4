// Test support for metrics: a small parser of the Prometheus text format and a real
// node_exporter (Debian's prometheus-node-exporter) serving a textfile directory on 127.0.0.1.
import { $ } from "zx";
import { freePort } from "./composure.ts";

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the sample lines of the text exposition format (comments skipped). */
export function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split("\n")) {
    if (!line.trim() || line.startsWith("#")) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/.exec(line);
    if (!match) throw new Error(`not an exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1]] = pair[2].replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c));
    samples.push({ name: match[1], labels, value: Number(match[3]) });
  }
  return samples;
}

/** The value of the one sample with this name and (at least) these labels; undefined when absent. */
export function valueOf(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const found = samples.filter((sample) => sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value));
  if (found.length > 1) throw new Error(`${found.length} samples of ${name} match ${JSON.stringify(labels)}`);
  return found[0]?.value;
}

export interface NodeExporter {
  url: string;
  scrape(): Promise<Sample[]>;
  stop(): Promise<void>;
}

/** Starts prometheus-node-exporter with only the textfile collector, on a free loopback port. */
export async function startNodeExporter(textfileDir: string): Promise<NodeExporter> {
  const port = await freePort();
  const binary = process.env.NODE_EXPORTER ?? "prometheus-node-exporter";
  const flags = [`--web.listen-address=127.0.0.1:${port}`, "--collector.disable-defaults", "--collector.textfile", `--collector.textfile.directory=${textfileDir}`, "--web.disable-exporter-metrics"];
  // exec: the shell becomes node_exporter, so stop()'s SIGTERM reaches it
  const serving = $({ stdio: ["ignore", "ignore", "pipe"], quiet: true, nothrow: true })`exec ${binary} ${flags}`;
  let stderr = "";
  serving.stderr.on("data", (chunk: Buffer) => (stderr += chunk));
  const url = `http://127.0.0.1:${port}/metrics`;
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (serving.output?.exitCode === 127) throw new Error(`cannot start ${binary} (install Debian's prometheus-node-exporter): ${stderr.trim()}`);
    try {
      const response = await fetch(url);
      if (response.ok) break;
    } catch {
      // not listening yet
    }
    if (serving.output || Date.now() > deadline) throw new Error(`node_exporter did not come up on ${url}: ${stderr}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    url,
    scrape: async () => parseExposition(await (await fetch(url)).text()),
    stop: async () => {
      serving.child?.kill("SIGTERM"); // a no-op once it has exited
      await serving;
    },
  };
}

// Acceptance of the victoriametrics strategy against the VictoriaMetrics 1.79 fixture: a known
// series spanning five hours of synthetic timestamps (imported through /api/v1/import/prometheus),
// a hot backup whose snapshot (symlinks into hard-linked parts) is archived dereferenced and
// deleted afterwards, the data wiped, a restore that gives the same raw samples back.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { ComposeProject, composure, containersOf, docker, fixtureImage, inVolumes, requireDocker, sh, tempDir } from "../support/composure.ts";

const image = fixtureImage("victoriametrics");
const project = new ComposeProject(
  `cmpt-vm${process.pid}`,
  `
version: "3.8"
services:
  vm:
    image: ${image}
    labels:
      composure.victoriametrics.query: synthetic_series
    volumes: ["storage:/victoria-metrics-data"]
volumes: { storage: {} }
`,
);
const { containerOf, startedAt, isRunning } = containersOf(project);
const destination = tempDir("vm-dest");
const env = { PROJECT: project.name, DESTINATION: destination };
const volume = project.volume("storage");

const now = Math.floor(Date.now() / 1000);
const first = now - 5 * 3600;
const last = now - 3600;
const samplesPerSeries = (last - first) / 30 + 1;
function exposition(): string {
  const lines: string[] = [];
  for (const instance of ["a", "b", "c"]) {
    for (let time = first; time <= last; time += 30) {
      const value = ((time / 30) % 89) * (instance.charCodeAt(0) - 96) + 0.5;
      lines.push(`synthetic_series{instance="${instance}",job="synthetic"} ${value} ${time * 1000}`);
    }
  }
  return `${lines.join("\n")}\n`;
}

async function curl(...args: string[]): Promise<string> {
  const id = await containerOf("vm");
  return docker("exec", id, "curl", "-sf", ...args);
}

/** Every raw sample of the series (export API), one line per series, sorted. */
async function rawSamples(): Promise<string> {
  const body = await curl(`http://localhost:8428/api/v1/export?match[]=synthetic_series&start=${first - 60}&end=${last + 60}`);
  return body
    .split("\n")
    .filter(Boolean)
    .map((line) => {
      const series = JSON.parse(line) as { metric: Record<string, string>; values: number[]; timestamps: number[] };
      return `${JSON.stringify(series.metric)} ${JSON.stringify(series.timestamps)} ${JSON.stringify(series.values)}`;
    })
    .sort()
    .join("\n");
}

async function waitHealthy(): Promise<void> {
  for (let attempt = 0; attempt < 120; attempt++) {
    try {
      if ((await curl("http://localhost:8428/health")).trim() === "OK") return;
    } catch {
      // not up yet
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  throw new Error("victoriametrics did not become healthy");
}

const leftovers = () => inVolumes([`${volume}:/s:ro`], "ls -A /s/snapshots /s/data/small/snapshots /s/data/big/snapshots /s/indexdb/snapshots 2>/dev/null | grep -v -e '^/' -e '^$'; true");

describe("victoriametrics strategy", { timeout: 600_000 }, () => {
  before(async () => {
    await requireDocker();
    await project.up();
    await waitHealthy();
    const id = await containerOf("vm");
    await sh("docker", ["exec", "-i", id, "curl", "-sf", "--data-binary", "@-", "http://localhost:8428/api/v1/import/prometheus"], exposition());
    // Imported rows become searchable after the next flush (about a second), in an in-memory part
    // a snapshot does not hold until VictoriaMetrics writes it to disk (every few seconds).
    const searchable = async () => {
      const lines = (await rawSamples()).split("\n").filter(Boolean);
      return lines.length === 3 && lines.every((line) => line.split(" ")[1].split(",").length === samplesPerSeries);
    };
    const onDisk = async () => (await inVolumes([`${volume}:/s:ro`], "find /s/data/small -name values.bin | head -n 1")).trim() !== "";
    for (let attempt = 0; attempt < 60; attempt++) {
      if ((await searchable()) && (await onDisk())) return;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    throw new Error("the imported samples never became searchable and written to disk");
  });
  after(async () => {
    await project.down().catch(() => undefined);
  });

  test("a hot backup, a wipe and a restore give back the same samples", async () => {
    const expected = await rawSamples();
    const startedBefore = await startedAt("vm");

    const backup = await composure("backup", env);
    assert.equal(backup.code, 0, backup.stderr);
    assert.match(backup.stderr, /vm: VictoriaMetrics snapshot \S+ created/);
    assert.match(backup.stderr, /vm: snapshot \S+ deleted/);
    assert.equal(await startedAt("vm"), startedBefore, "backed up hot: never restarted");
    assert.equal((await leftovers()).trim(), "", "no snapshot left in any area of the storage");

    const runs = JSON.parse((await composure("list", env, ["--json"])).stdout);
    const runDir = path.join(destination, project.name, runs[0].run);
    const manifest = JSON.parse(readFileSync(path.join(runDir, "manifest.json"), "utf8"));
    const service = manifest.services.find((entry: { name: string }) => entry.name === "vm");
    assert.equal(service.strategy, "victoriametrics", "detected from the image");
    const artifact = service.artifacts[0];
    assert.equal(artifact.facts.drill.samples.length, 3);
    assert.ok(artifact.facts.drill.series >= 3, "series count recorded");
    // Dereferenced: the archive holds the parts themselves, no symlink into the live storage.
    const listing = await sh("sh", ["-c", `zstd -dc '${path.join(runDir, artifact.path)}' | tar tvf -`]);
    assert.doesNotMatch(listing, /^l/m, "no symlinks in the archive");
    assert.match(listing, /\.\/data\/small\/\d{4}_\d{2}\/[^/]+\/values\.bin/);
    assert.match(listing, /\.\/indexdb\/[0-9A-F]+\/[^/]+\/items\.bin/);

    const id = await containerOf("vm");
    await docker("stop", id);
    await inVolumes([`${volume}:/s`], "rm -rf /s/* /s/.[!.]*; true");
    await docker("start", id);
    await waitHealthy();
    assert.equal(await rawSamples(), "", "the data is gone");

    const restore = await composure("restore", { ...env, FORCE: "1" });
    assert.equal(restore.code, 0, restore.stderr);
    assert.match(restore.stderr, /restored VictoriaMetrics snapshot .*checked: \d+ series, 18 recorded values of "synthetic_series" .* match/);
    assert.equal(await rawSamples(), expected, "the same query returns the same samples");
    assert.ok(await isRunning("vm"));
  });
});

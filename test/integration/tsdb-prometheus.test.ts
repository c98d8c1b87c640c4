// Acceptance of the prometheus strategy against the Prometheus 2.42 fixture: a known series
// spanning five hours of synthetic timestamps (built into blocks with promtool), a hot backup
// through the admin API that leaves no snapshot behind, the data wiped, a restore that gives the
// same raw samples back and passes its own restore drill.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { ComposeProject, composure, containersOf, docker, fixtureImage, inVolumes, requireDocker, sh, tempDir } from "../support/composure.ts";

const image = fixtureImage("prometheus");
const project = new ComposeProject(
  `cmpt-prom${process.pid}`,
  `
version: "3.8"
services:
  prom:
    image: ${image}
    command: ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus", "--web.enable-admin-api"]
    labels:
      composure.prometheus.query: synthetic_series
    volumes: ["tsdb:/prometheus"]
volumes: { tsdb: {} }
`,
);
const { containerOf, startedAt, isRunning } = containersOf(project);
const destination = tempDir("prom-dest");
const env = { PROJECT: project.name, DESTINATION: destination };
const volume = project.volume("tsdb");

// Three series, one sample a minute from 5 h to 1 h ago: older than the head, so promtool's blocks hold them.
const now = Math.floor(Date.now() / 1000);
const first = now - 5 * 3600;
const last = now - 3600;
function openMetrics(): string {
  const lines = ["# TYPE synthetic_series gauge"];
  for (const instance of ["a", "b", "c"]) {
    for (let time = first; time <= last; time += 60) {
      const value = ((time / 60) % 97) * (instance.charCodeAt(0) - 96) + 0.25;
      lines.push(`synthetic_series{instance="${instance}"} ${value} ${time}`);
    }
  }
  lines.push("# EOF");
  return `${lines.join("\n")}\n`;
}

async function prometheusApi(apiPath: string): Promise<any> {
  const id = await containerOf("prom");
  const body = await docker("exec", id, "curl", "-sf", `http://localhost:9090${apiPath}`);
  return JSON.parse(body);
}

/** Every raw sample of the series over the whole synthetic range, sorted. */
async function rawSamples(): Promise<string> {
  const query = encodeURIComponent("synthetic_series[6h]");
  const answer = await prometheusApi(`/api/v1/query?query=${query}&time=${now}`);
  assert.equal(answer.status, "success");
  const series = (answer.data.result as { metric: Record<string, string>; values: [number, string][] }[])
    .map((entry) => `${JSON.stringify(entry.metric)} ${JSON.stringify(entry.values)}`)
    .sort();
  return series.join("\n");
}

async function waitReady(): Promise<void> {
  const id = await containerOf("prom");
  for (let attempt = 0; attempt < 120; attempt++) {
    try {
      await docker("exec", id, "curl", "-sf", "http://localhost:9090/-/ready");
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
  throw new Error("prometheus did not become ready");
}

const snapshotsIn = (vol: string) => inVolumes([`${vol}:/p:ro`], "ls -A /p/snapshots 2>/dev/null; true");

describe("prometheus strategy", { timeout: 600_000 }, () => {
  before(async () => {
    await requireDocker();
    await project.up();
    const id = await containerOf("prom");
    await docker("stop", id);
    // Blocks built as nobody, like the server's own files, straight into the data volume.
    await sh("docker", ["run", "--rm", "-i", "--log-driver", "none", "--user", "nobody", "-v", `${volume}:/prometheus`, "--entrypoint", "sh", image, "-c", "cat > /tmp/in.om && promtool tsdb create-blocks-from openmetrics /tmp/in.om /prometheus >/dev/null"], openMetrics());
    await docker("start", id);
    await waitReady();
  });
  after(async () => {
    await project.down().catch(() => undefined);
  });

  test("a hot backup, a wipe and a restore give back the same samples", async () => {
    const expected = await rawSamples();
    assert.equal(expected.split("\n").length, 3, "three synthetic series before the backup");
    assert.match(expected, /"instance":"c"/);
    const startedBefore = await startedAt("prom");

    const backup = await composure("backup", env);
    assert.equal(backup.code, 0, backup.stderr);
    assert.match(backup.stderr, /prom: Prometheus snapshot \S+ taken/);
    assert.equal(await startedAt("prom"), startedBefore, "backed up hot: never restarted");
    assert.equal((await snapshotsIn(volume)).trim(), "", "the snapshot directory was deleted");

    const runs = JSON.parse((await composure("list", env, ["--json"])).stdout);
    const manifest = JSON.parse(readFileSync(path.join(destination, project.name, runs[0].run, "manifest.json"), "utf8"));
    const service = manifest.services.find((entry: { name: string }) => entry.name === "prom");
    assert.equal(service.strategy, "prometheus", "detected from the image");
    assert.equal(service.downtimeSeconds, 0);
    const facts = service.artifacts[0].facts;
    assert.equal(facts.drill.query, "synthetic_series");
    assert.equal(facts.drill.samples.length, 3, "sample values of the recorded query");
    assert.ok(facts.drill.series >= 0);
    assert.equal(facts.owner, "65534:65534");

    // Wipe: an empty TSDB, the server running on it.
    const id = await containerOf("prom");
    await docker("stop", id);
    await inVolumes([`${volume}:/p`], "rm -rf /p/* /p/.[!.]*; true");
    await docker("start", id);
    await waitReady();
    assert.equal(await rawSamples(), "", "the data is gone");

    const restore = await composure("restore", { ...env, FORCE: "1" });
    assert.equal(restore.code, 0, restore.stderr);
    assert.match(restore.stderr, /restored Prometheus snapshot .*checked: \d+ series, 18 recorded values of "synthetic_series" .* match/);
    await waitReady();
    assert.equal(await rawSamples(), expected, "the same query returns the same samples");
    const owners = await inVolumes([`${volume}:/p:ro`], "find /p -mindepth 1 ! -user 65534 ! -name '.composure*' | head -5");
    assert.equal(owners.trim(), "", "everything in the TSDB belongs to nobody, who runs Prometheus");
    assert.ok(await isRunning("prom"));
  });
});

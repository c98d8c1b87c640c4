// Progress that means something, as an operator sees it on a terminal (a tmux pseudo-terminal):
// the capture of a volume holding 1 GiB of JSON text shows the bytes of the tar stream read
// against its size, a share done that grows, the rate and the time left, not the few compressed
// bytes written; the restore shows what is read of the archive against the archive's size. Off
// a terminal the same commands print no progress line, only one line per finished step.
import assert from "node:assert/strict";
import { rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { formatBytes } from "../../scripts/lib/log.ts";
import { backupsOf, busyboxImage, busyboxProject, composure, inVolumes, repoRoot, requireDocker, tempDir } from "../support/composure.ts";
import { Terminal } from "../support/terminal.ts";

const GiB = 1024 ** 3;
// Varied JSON lines: a 3.6 MB chunk, longer than zstd's window at level 3, repeated to 1 GiB,
// so that it compresses like text (about 4:1) rather than like one repeated line.
const generate = `
set -e
awk 'BEGIN { srand(7); for (i = 0; i < 40000; i++) printf "{\\"id\\": %d, \\"user\\": \\"user%d\\", \\"score\\": %.4f, \\"tags\\": [\\"t%d\\", \\"t%d\\"], \\"active\\": %s}\\n", i, int(rand() * 1e6), rand() * 1000, int(rand() * 50), int(rand() * 50), (rand() < 0.5 ? "true" : "false") }' > /tmp/chunk
size=$(wc -c < /tmp/chunk)
n=$(( (${GiB} + size - 1) / size )); i=0
while [ $i -lt $n ]; do cat /tmp/chunk; i=$((i + 1)); done | head -c ${GiB} > /data/events.json
`;

/** The progress samples of `label` on a screen: read, of size, share, rate, time left. */
const samplePattern = (label: string) => new RegExp(`${label}: ([\\d.]+ \\w+) of ([\\d.]+ \\w+) \\((\\d+)%\\) [\\d.]+ \\w+/s(?:, ([\\d.]+ s|\\d+ min \\d+ s) left)?`, "g");

interface Sample {
  read: string;
  size: string;
  share: number;
  left?: string;
}

/** Runs `command` in a terminal and reads its screen every 100 ms until it ends: the samples of `label` and the last screen. */
async function watch(command: string[], env: Record<string, string>, label: string): Promise<{ code: number; samples: Sample[]; screen: string }> {
  const terminal = await Terminal.start(command, { cwd: repoRoot, env, width: 220 });
  const samples: Sample[] = [];
  try {
    for (;;) {
      const screen = await terminal.screen();
      for (const match of screen.matchAll(samplePattern(label))) {
        const sample = { read: match[1], size: match[2], share: Number(match[3]), left: match[4] };
        if (!samples.some((seen) => seen.read === sample.read)) samples.push(sample);
      }
      const ended = await terminal.exitCode(0).then((code) => code, () => undefined);
      if (ended !== undefined) return { code: ended, samples, screen: await terminal.screen() };
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  } finally {
    await terminal.close();
  }
}

/** A temporary folder removed after the suite: the runs of 1 GiB take hundreds of MB. */
const folders: string[] = [];
const scratch = (prefix: string) => folders[folders.push(tempDir(prefix)) - 1];

describe("progress on a terminal", { timeout: 900_000 }, () => {
  const project = busyboxProject("cmpt-progress", { app: ["data:/data"] });
  const destination = scratch("progress-dest");
  const env = { PROJECT: project.name, DESTINATION: destination, COMPOSURE_HELPER_IMAGE: busyboxImage, METRICS_DIR: path.join(os.tmpdir(), "composure-test-metrics") };

  before(async () => {
    await requireDocker();
    await project.up();
    await inVolumes([`${project.volume("data")}:/data`], generate);
  });
  after(async () => {
    await project.down().catch(() => undefined);
    for (const folder of folders) rmSync(folder, { recursive: true, force: true });
  });

  test("the capture of 1 GiB of JSON text shows the bytes read of 1.0 GiB, a growing share and the time left", async () => {
    const { code, samples, screen } = await watch(["make", "-s", "backup"], env, "data");
    assert.equal(code, 0, screen);
    console.log(`# capture samples: ${samples.map((sample) => `${sample.read} (${sample.share}%)${sample.left ? ` ${sample.left} left` : ""}`).join(", ")}`);
    assert.ok(samples.length >= 2, `at least two progress samples of the capture, against its size:\n${screen}`);
    assert.ok(samples.every((sample) => sample.size === "1.0 GiB"), `the size is the volume's 1 GiB, not what was written: ${JSON.stringify(samples)}`);
    const shares = samples.map((sample) => sample.share);
    assert.deepEqual(shares, [...shares].sort((a, b) => a - b), "the share only grows");
    assert.ok(new Set(shares).size >= 2, `the share takes several values: ${shares.join(", ")}`);
    assert.ok(samples.some((sample) => sample.share >= 50), `the share reaches past half: ${shares.join(", ")}`);
    assert.ok(samples.some((sample) => sample.left), "a time left is shown");
    assert.match(screen, /^data: 1\.0 GiB read \(100%\), [\d.]+ \w+ stored in [\d.]+ s$/m, "the capture ends with its one summary line at 100%, the progress line gone");
  });

  test("the restore shows what is read of the archive against its size", async () => {
    const { code, samples, screen } = await watch(["make", "-s", "restore"], { ...env, FORCE: "1", NO_RESCUE: "1" }, "app/data\\.tar\\.zst");
    assert.equal(code, 0, screen);
    console.log(`# restore samples: ${samples.map((sample) => `${sample.read} of ${sample.size} (${sample.share}%)`).join(", ")}`);
    assert.ok(samples.length >= 1, `a progress sample of the restore, against the archive's size:\n${screen}`);
    const { runIds, manifestOf } = backupsOf(path.join(destination, project.name));
    const archive = manifestOf(runIds().at(-1)!).services[0].artifacts[0];
    assert.ok(samples.every((sample) => sample.size === formatBytes(archive.bytes)), `the size is the archive's, ${formatBytes(archive.bytes)}: ${JSON.stringify(samples)}`);
    assert.match(screen, /app\/data\.tar\.zst: [\d.]+ \w+ read \(100%\), \d+ entries, 1\.0 GiB in [\d.]+ s/, "the restore ends with its summary line at 100%");
  });

  test("the repository engine (restic): backup and restore show restic's bytes done of its total", async () => {
    const repositoryEnv = { ...env, DESTINATION: scratch("progress-repo-dest"), STORAGE: "repository" };
    const backup = await watch(["make", "-s", "backup"], repositoryEnv, "data");
    assert.equal(backup.code, 0, backup.screen);
    console.log(`# repository backup samples: ${backup.samples.map((sample) => `${sample.read} of ${sample.size} (${sample.share}%)`).join(", ")}`);
    assert.ok(new Set(backup.samples.map((sample) => sample.share)).size >= 2, `the share takes several values:\n${backup.screen}`);
    assert.ok(backup.samples.every((sample) => sample.size === "1.0 GiB"), JSON.stringify(backup.samples));
    assert.match(backup.screen, /^data: 1 files \(0 unchanged, not read again\), 1\.0 GiB -> [\d.]+ \w+ added to the repository in [\d.]+ s$/m);
    const restore = await watch(["make", "-s", "restore"], { ...repositoryEnv, FORCE: "1", NO_RESCUE: "1" }, "app/data");
    assert.equal(restore.code, 0, restore.screen);
    console.log(`# repository restore samples: ${restore.samples.map((sample) => `${sample.read} of ${sample.size} (${sample.share}%)`).join(", ")}`);
    assert.ok(restore.samples.length >= 1 && restore.samples.every((sample) => sample.size === "1.0 GiB"), `restore progress against the snapshot's size:\n${restore.screen}`);
  });

  test("uploads and downloads (rclone) show the bytes sent of the run's size", async () => {
    const config = path.join(scratch("progress-config"), "composure.yml");
    writeFileSync(config, `remote:\n  target: "${scratch("progress-remote")}"\n  bwlimit: "80M"\n`);
    const remoteEnv = { ...env, DESTINATION: scratch("progress-offsite-dest"), CONFIG: config };
    const run = "\\d{8}T\\d{6}Z";
    const backup = await watch(["make", "-s", "backup"], remoteEnv, `upload of ${project.name}/${run}`);
    assert.equal(backup.code, 0, backup.screen);
    console.log(`# upload samples: ${backup.samples.map((sample) => `${sample.read} of ${sample.size} (${sample.share}%)`).join(", ")}`);
    assert.ok(new Set(backup.samples.map((sample) => sample.share)).size >= 2, `the upload's share takes several values:\n${backup.screen}`);
    assert.match(backup.screen, /^run \S+ is off-site/m);
    rmSync(path.join(remoteEnv.DESTINATION, project.name), { recursive: true });
    const restore = await watch(["make", "-s", "restore"], { ...remoteEnv, FROM: "remote", FORCE: "1", NO_RESCUE: "1" }, `download of ${project.name}/${run}`);
    assert.equal(restore.code, 0, restore.screen);
    console.log(`# download samples: ${restore.samples.map((sample) => `${sample.read} of ${sample.size} (${sample.share}%)`).join(", ")}`);
    assert.ok(new Set(restore.samples.map((sample) => sample.share)).size >= 2, `the download's share takes several values:\n${restore.screen}`);
  });

  test("off a terminal: no progress line, one line per finished step", async () => {
    const backup = await composure("backup", env);
    assert.equal(backup.code, 0, backup.stderr);
    assert.doesNotMatch(backup.stderr, /\r|\x1b\[K| of 1\.0 GiB \(/, "no progress line written");
    assert.match(backup.stderr, /^\S+ \S+ info  data: [\d.]+ \w+ stored in [\d.]+ s$/m);
  });
});

// Issue 11: the Docker daemon restarted during a stop-mode backup. The test runs a dockerd of its
// own (own data root, exec root, pidfile and socket; no iptables, no bridge; containers without
// network) in a network namespace of its own, so the shared engine other suites use is never
// touched. It stops that daemon while
// composure holds the service stopped, lets the run go on against the dead socket, and starts the
// daemon again while composure is restarting the service. Then: a clear error naming the Docker
// engine, the service running, no lock or half-written run left, the data unchanged, and the next
// backup succeeds and verifies.
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { backupsOf, busyboxImage, commandArguments, composure, repoRoot, requireDocker, sh, tempDir } from "../support/composure.ts";

const root = tempDir("c11-dockerd");
const socket = path.join(root, "docker.sock");
const dockerHost = `unix://${socket}`;
writeFileSync(path.join(root, "daemon.json"), "{}\n"); // never the host's /etc/docker/daemon.json
const daemonArgs = [
  "--config-file", path.join(root, "daemon.json"),
  "--data-root", path.join(root, "data"),
  "--exec-root", path.join(root, "exec"),
  "--pidfile", path.join(root, "dockerd.pid"),
  "-H", dockerHost,
  // no iptables rules, no default bridge. NB: --bridge=none makes dockerd delete an existing
  // docker0, which is why it runs in a network namespace of its own (see PrivateDaemon.start)
  "--iptables=false", "--ip-masq=false", "--bridge=none",
  "--storage-driver=vfs", // no overlay mounts to leave behind
];

const project = `c11-restart-${process.pid}`;
const volume = `${project}_data`;
const container = `${project}-db-1`;
const destination = tempDir("c11-restart-dest");
const config = path.join(tempDir("c11-restart-config"), "composure.yml");
writeFileSync(config, "lock: { timeout_seconds: 5 }\nstop_timeout_seconds: 10\n"); // a lock left held fails fast
const env = { DOCKER_HOST: dockerHost, PROJECT: project, DESTINATION: destination, CONFIG: config };
const projectDir = path.join(destination, project);
const failpointDir = tempDir("c11-failpoint");
const { runIds } = backupsOf(projectDir);

/** docker against the private daemon. */
const privateDocker = async (...args: string[]) => (await sh("sh", ["-c", 'DOCKER_HOST="$0" exec docker "$@"', dockerHost, ...args])).trim();

async function waitUntil(check: () => boolean | Promise<boolean>, timeoutMs: number, what: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The test's own dockerd, started and stopped with the same arguments every time. */
class PrivateDaemon {
  private child?: ChildProcess;

  async start(): Promise<void> {
    const logFd = openSync(path.join(root, "dockerd.log"), "a");
    // unshare --net: whatever dockerd does to interfaces happens in a namespace only it uses (the
    // socket is a file, reachable from here; the namespace goes away with its last process)
    const child = spawn("unshare", ["--net", "--", "dockerd", ...daemonArgs], { stdio: ["ignore", logFd, logFd] });
    closeSync(logFd);
    this.child = child;
    let failure: Error | undefined;
    child.once("error", (error) => (failure = error)); // e.g. no dockerd binary: the test fails
    const answers = () => privateDocker("version", "--format", "{{.Server.Version}}").then(() => true, () => false);
    await waitUntil(async () => {
      if (failure || child.exitCode !== null) throw new Error(`private dockerd did not start: ${failure?.message ?? `exit ${child.exitCode}`}\n${this.logTail()}`);
      return answers();
    }, 120_000, () => `the private dockerd to answer\n${this.logTail()}`);
    assert.notEqual(readlinkSync(`/proc/${child.pid}/ns/net`), readlinkSync("/proc/self/ns/net"), "the private dockerd has a network namespace of its own");
  }

  /** SIGTERM and wait for the exit (SIGKILL after 90 s, then its containerd too). */
  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
    const exited = once(child, "exit");
    child.kill("SIGTERM");
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      killPidFile(path.join(root, "exec", "containerd", "containerd.pid"));
    }, 90_000);
    await exited;
    clearTimeout(timer);
  }

  get running(): boolean {
    return this.child !== undefined;
  }

  private logTail(): string {
    return readFileSync(path.join(root, "dockerd.log"), "utf8").split("\n").slice(-15).join("\n");
  }
}

function killPidFile(file: string): void {
  try {
    process.kill(Number(readFileSync(file, "utf8")), "SIGKILL");
  } catch {
    // gone already
  }
}

/** Mounts the daemon may leave under its roots when it was killed (netns, shm): rm cannot remove them. */
async function unmountUnder(dir: string): Promise<void> {
  const mounts = readFileSync("/proc/self/mounts", "utf8").split("\n").map((line) => line.split(" ")[1] ?? "");
  for (const mount of mounts.filter((point) => point.startsWith(`${dir}/`)).reverse()) await sh("umount", ["-l", mount]).catch(() => undefined);
}

/** A composure script whose stderr can be watched while it runs. */
function startComposure(script: string, extra: Record<string, string>) {
  const child = spawn(process.execPath, commandArguments(script), {
    cwd: repoRoot,
    env: { ...process.env, COMPOSURE_HELPER_IMAGE: busyboxImage, METRICS_DIR: path.join(os.tmpdir(), "composure-test-metrics"), ...env, ...extra },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stdout.resume();
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk));
  const done = new Promise<{ code: number; stderr: string }>((resolve) => child.on("close", (code) => resolve({ code: code ?? 128, stderr })));
  return { done, stderr: () => stderr };
}

/** Names, modes, sizes, mtimes and content hashes of everything in the volume. */
const checksum = () =>
  privateDocker("run", "--rm", "--network", "none", "-v", `${volume}:/data:ro`, busyboxImage, "sh", "-c",
    "cd /data && find . -exec stat -c '%n|%f|%s|%Y' {} + | sort && find . -type f -exec sha256sum {} + | sort");
const isRunning = async () => (await privateDocker("inspect", "-f", "{{.State.Running}}", container)) === "true";

describe("the Docker daemon restarted during a stop-mode backup", { timeout: 900_000 }, () => {
  const daemon = new PrivateDaemon();
  let dataBefore: string;

  before(async () => {
    await requireDocker();
    await daemon.start();
    // the private daemon has no images and no registry: bring the fixture busybox over
    await sh("sh", ["-c", 'docker save "$0" | DOCKER_HOST="$1" docker load', busyboxImage, dockerHost]);
    await privateDocker("volume", "create", "--label", `com.docker.compose.project=${project}`, "--label", "com.docker.compose.volume=data", volume);
    const labels = [`com.docker.compose.project=${project}`, "com.docker.compose.service=db", "com.docker.compose.container-number=1", "com.docker.compose.oneoff=False"];
    await privateDocker("run", "-d", "--name", container, "--network", "none", "-v", `${volume}:/data`, ...labels.flatMap((label) => ["--label", label]),
      busyboxImage, "sh", "-c", 'trap "exit 0" TERM; sleep 2147483647 & wait');
    await privateDocker("run", "--rm", "--network", "none", "-v", `${volume}:/data`, busyboxImage, "sh", "-c",
      "dd if=/dev/urandom of=/data/blob bs=1M count=4 2>/dev/null && echo hello > /data/hello && mkdir /data/sub && echo x > /data/sub/x");
    dataBefore = await checksum();
  });

  after(async () => {
    if (daemon.running) await privateDocker("rm", "-f", container).catch(() => undefined);
    await daemon.stop();
    await unmountUnder(root);
    for (const dir of [root, destination, path.dirname(config), failpointDir]) rmSync(dir, { recursive: true, force: true });
  });

  test("the run fails naming the Docker engine, leaves the service running and nothing locked or half-listed; the next backup works", async () => {
    const marker = path.join(failpointDir, "reached");
    const run = startComposure("backup", { COMPOSURE_FAILPOINT: "backup:capture", COMPOSURE_FAILPOINT_MARKER: marker });
    await waitUntil(() => existsSync(marker), 180_000, () => `the backup to reach its capture:\n${run.stderr()}`);
    assert.equal(await isRunning(), false, "composure stopped the service for its capture");

    // restart: stop the daemon, let the run meet the dead socket, start the daemon again
    await daemon.stop();
    writeFileSync(`${marker}.continue`, "");
    await waitUntil(() => /Docker engine .* is not answering/.test(run.stderr()), 60_000, () => `composure to wait for the engine:\n${run.stderr()}`);
    await daemon.start();
    const outcome = await run.done;

    assert.equal(outcome.code, 1, outcome.stderr);
    assert.match(outcome.stderr, /db: backup failed: lost the connection to the Docker engine at unix:\/\/.*dockerd (stopped|restarted)/);
    assert.ok(await isRunning(), "the release waited for the engine and started the service again");
    assert.ok(!existsSync(path.join(projectDir, ".stopped.json")), "nothing left in the journal of stopped containers");
    assert.ok(!existsSync(path.join(projectDir, ".lock")), "the lock was released");
    assert.equal(await privateDocker("ps", "-aq", "--filter", "label=composure.helper"), "", "no helper container left");

    // the failed run is sealed as failed: listed as such, with nothing in it verify could trust
    const failedRun = runIds().at(-1)!;
    const listed = JSON.parse((await composure("list", env, ["--json"])).stdout) as { run: string; outcome: string; bytes: number }[];
    assert.deepEqual(listed.map((row) => [row.run, row.outcome, row.bytes]), [[failedRun, "failed", 0]]);
    assert.ok(runIds().every((id) => existsSync(path.join(projectDir, id, "manifest.json"))), "no run folder without a manifest");
    assert.deepEqual(readdirSync(destination, { recursive: true }).map(String).filter((name) => name.endsWith(".partial")), []);
    const verifyFailed = await composure("verify", env);
    assert.equal(verifyFailed.code, 1, "verify does not pass a run without artifacts");
    assert.match(verifyFailed.stderr, /no artifacts \(outcome failed\)/);

    // the next command: no stale lock to take over, the service runs, the data is unchanged
    const next = await composure("backup", env);
    assert.equal(next.code, 0, next.stderr);
    assert.doesNotMatch(next.stderr, /stale lock|restarted containers an interrupted run had stopped/);
    assert.ok(await isRunning(), "the service runs after the next backup");
    assert.equal(await checksum(), dataBefore, "the volume's data is unchanged");
    const verify = await composure("verify", env);
    assert.equal(verify.code, 0, verify.stderr);
    const newest = JSON.parse((await composure("list", env, ["--json"])).stdout)[0] as { outcome: string; bytes: number };
    assert.equal(newest.outcome, "success");
    assert.ok(newest.bytes > 0);
  });
});

// Issue 23, part 1: no command hangs without a Docker engine. A newcomer's `make demo` printed
// `error connect ENOENT /var/run/docker.sock` and never exited (the helper-image build left tar
// blocked on a pipe nobody read). Here DOCKER_HOST points at engines that are not there in three
// ways: a socket path nobody created (ENOENT), a socket file whose daemon died (ECONNREFUSED), and
// a daemon that accepts connections and never answers (hung). Every command, the image build
// `make demo` runs and `make demo` itself end within seconds; those that need the engine exit
// non-zero naming DOCKER_HOST, the socket and what to do; the catalog-only ones (list, prune, sync,
// metrics, verify without DEEP) do their job without an engine. Plus scripts/setup.sh: fast and
// exit 0 on this set-up machine, and as a non-root user it prints the exact command and stops.
// Last, the README's promise itself: `make demo` on a machine with no dockerd and no images (a
// sandbox: /run, /var/lib/docker, /etc/docker, /var/log and pids of its own; the dockerd it starts
// gets a network namespace of its own and dies with it) ends with exit 0 and a verified run.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { backupsOf, busyboxImage, busyboxProject, commandArguments, composure, repoRoot, requireDocker, tempDir, type Outcome } from "../support/composure.ts";

/** A hard stop well above every limit asserted below: a hang fails the test instead of stalling it. */
const hardKillMs = 60_000;
/** How long a command may take without an engine. The hung daemon costs the 10 s ping timeout. */
const promptMs = 20_000;

interface Timed extends Outcome {
  ms: number;
}

/**
 * Runs argv with env added in a process group of its own; a hang is ended after hardKillMs by
 * SIGKILL to the whole group (a hung script's children hold its pipes) and reported as code 128.
 */
function run(argv: string[], env: Record<string, string>, cwd = repoRoot, limitMs = hardKillMs): Promise<Timed> {
  const started = performance.now();
  const child = spawn(argv[0], argv.slice(1), { cwd, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"], detached: true });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk));
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk));
  return new Promise((resolve) => {
    let exited: number | undefined;
    const finish = (code: number) => {
      clearTimeout(killer);
      resolve({ code, stdout, stderr, ms: performance.now() - started });
    };
    const killer = setTimeout(() => {
      try {
        process.kill(-child.pid!, "SIGKILL");
      } catch {
        // the group is gone already
      }
      setTimeout(() => finish(128), 2000).unref(); // even if something outside the group holds a pipe
    }, limitMs);
    child.on("exit", (code, signal) => (exited = code ?? (signal ? 128 : 1)));
    child.on("close", (code, signal) => finish(exited ?? code ?? (signal ? 128 : 1)));
  });
}

/** A composure command through its bundle, as make runs it (test/support's composure() does), timed and bounded. */
const command = (name: string, env: Record<string, string>, args: string[] = []): Promise<Timed> =>
  run([process.execPath, ...commandArguments(name), ...args], { COMPOSURE_HELPER_IMAGE: busyboxImage, ...env });

const show = (what: string, outcome: Timed) => `${what}: exit ${outcome.code} after ${Math.round(outcome.ms)} ms\n--- stdout\n${outcome.stdout}\n--- stderr\n${outcome.stderr}`;

const root = tempDir("c23-no-engine");
chmodSync(root, 0o755); // the non-root set-up runs below read from here
const engines = {
  missing: path.join(root, "nobody-created.sock"),
  refused: path.join(root, "dead-daemon.sock"),
  hung: path.join(root, "hung-daemon.sock"),
};

/** A unix socket file left behind by a process that died: connecting is refused. */
async function leaveDeadSocket(file: string): Promise<void> {
  const child = spawn(process.execPath, ["-e", 'require("net").createServer().listen(process.argv[1], () => console.log("listening"))', file], { stdio: ["ignore", "pipe", "inherit"] });
  await new Promise<void>((resolve) => child.stdout.once("data", () => resolve()));
  child.kill("SIGKILL");
  await new Promise((resolve) => child.once("close", resolve));
  assert.ok(existsSync(file), "the dead daemon's socket file stays");
}

/** A daemon that accepts every connection and never answers. */
const hungClients = new Set<net.Socket>();
const hungDaemon = net.createServer((socket) => {
  hungClients.add(socket);
  socket.on("close", () => hungClients.delete(socket));
  socket.on("error", () => undefined);
});

// Backups made while the engine ran: the catalog-only commands have something to work on, and
// verify DEEP=1 / restore get as far as needing the engine.
const project = busyboxProject("c23-noengine", { app: ["files:/files"] });
const destination = tempDir("c23-no-engine-dest");
const remoteDir = tempDir("c23-no-engine-remote");
const config = path.join(tempDir("c23-no-engine-config"), "composure.yml");
writeFileSync(config, `remote:\n  target: ${JSON.stringify(remoteDir)}\n`);
const metricsDir = tempDir("c23-no-engine-metrics");
const base = { PROJECT: project.name, DESTINATION: destination, CONFIG: config, METRICS_DIR: metricsDir };

const engineCommands: [string, Record<string, string>][] = [
  ["backup", {}],
  ["restore", { FORCE: "1" }],
  ["plan", {}],
  ["verify", { DEEP: "1" }],
];

/** The message of a command that needs the engine: names DOCKER_HOST and the socket, and says what to do. */
function assertNamesEngine(outcome: Timed, socket: string, what: string): void {
  const text = outcome.stderr + outcome.stdout;
  assert.ok(text.includes(`unix://${socket} (DOCKER_HOST)`), `${what} names the socket and DOCKER_HOST\n${show(what, outcome)}`);
  assert.match(text, /Docker engine/, `${what} says it is about the Docker engine\n${show(what, outcome)}`);
  assert.match(text, /start (dockerd|the engine)|setup\.sh/, `${what} says what to do\n${show(what, outcome)}`);
}

describe("no Docker engine: every command ends promptly and says why", { timeout: 1_800_000 }, () => {
  before(async () => {
    await requireDocker();
    await leaveDeadSocket(engines.refused);
    await new Promise<void>((resolve) => hungDaemon.listen(engines.hung, resolve));
    chmodSync(engines.hung, 0o777); // the non-root set-up below connects to it too
    await project.up();
    const backup = await composure("backup", base);
    assert.equal(backup.code, 0, backup.stderr);
    assert.equal(backupsOf(path.join(destination, project.name)).runIds().length, 1);
  });
  after(async () => {
    for (const socket of hungClients) socket.destroy();
    await new Promise((resolve) => hungDaemon.close(resolve));
    await project.down().catch(() => undefined);
  });

  for (const [kind, socket] of Object.entries(engines)) {
    const env = { ...base, DOCKER_HOST: `unix://${socket}` };
    const expected = kind === "hung" ? /did not answer within 10 s/ : kind === "missing" ? /ENOENT/ : /ECONNREFUSED/;

    test(`${kind} engine: backup, restore, plan and verify DEEP=1 exit non-zero within ${promptMs / 1000} s, naming DOCKER_HOST and the socket`, async () => {
      const outcomes = await Promise.all(engineCommands.map(([name, extra]) => command(name, { ...env, ...extra })));
      engineCommands.forEach(([name], index) => {
        const outcome = outcomes[index];
        const what = `${kind} engine: ${name}`;
        assert.ok(outcome.ms < promptMs, `${what} took ${Math.round(outcome.ms)} ms\n${show(what, outcome)}`);
        assert.notEqual(outcome.code, 0, show(what, outcome));
        assert.notEqual(outcome.code, 128, `${what} was killed: it hung\n${show(what, outcome)}`);
        assertNamesEngine(outcome, socket, what);
        assert.match(outcome.stderr, expected, show(what, outcome));
      });
    });

    test(`${kind} engine: list, prune, sync, metrics and verify need no engine and end within ${promptMs / 1000} s`, async () => {
      const [list, prune, sync, metrics, verify] = await Promise.all([
        command("list", env, ["--json"]),
        command("prune", { ...env, DRY_RUN: "1" }),
        command("sync", env),
        command("metrics", env),
        command("verify", env),
      ]);
      for (const [name, outcome] of Object.entries({ list, prune, sync, metrics, verify })) {
        const what = `${kind} engine: ${name}`;
        assert.ok(outcome.ms < promptMs, `${what} took ${Math.round(outcome.ms)} ms\n${show(what, outcome)}`);
        assert.equal(outcome.code, 0, show(what, outcome));
      }
      assert.equal(JSON.parse(list.stdout).length, 1, "list shows the run from the catalog");
      assert.match(verify.stderr, /verification passed/);
      assert.ok(existsSync(path.join(metricsDir, `composure-${project.name}.prom`)), "metrics wrote the textfile");
      assert.ok(readdirSync(path.join(remoteDir, project.name)).length > 0, "sync uploaded the run");
    });

    test(`${kind} engine: the helper-image build (scripts/build-helper-image.ts, test/images/build.sh) exits non-zero within ${promptMs / 1000} s`, async () => {
      const tag = `composure-test/no-engine-${process.pid}:never`;
      const [script, images] = await Promise.all([
        run([process.execPath, "--import", "tsx", "scripts/build-helper-image.ts", tag], { DOCKER_HOST: `unix://${socket}` }),
        run(["bash", "test/images/build.sh", "busybox"], { DOCKER_HOST: `unix://${socket}` }),
      ]);
      for (const [what, outcome] of [[`${kind} engine: build-helper-image.ts`, script], [`${kind} engine: test/images/build.sh busybox`, images]] as const) {
        assert.ok(outcome.ms < promptMs, `${what} took ${Math.round(outcome.ms)} ms\n${show(what, outcome)}`);
        assert.notEqual(outcome.code, 0, show(what, outcome));
        assert.notEqual(outcome.code, 128, `${what} was killed: it hung\n${show(what, outcome)}`);
        assertNamesEngine(outcome, socket, what);
      }
    });
  }

  test("make demo without an engine stops at its set-up within seconds, naming DOCKER_HOST and what to do", async () => {
    const outcome = await run(["make", "--no-print-directory", "demo"], { DOCKER_HOST: `unix://${engines.missing}`, DEMO_PROJECT: `c23-never-${process.pid}` });
    assert.ok(outcome.ms < promptMs, show("make demo", outcome));
    assert.notEqual(outcome.code, 0, show("make demo", outcome));
    assert.match(outcome.stderr, new RegExp(`setup: the Docker engine at unix://${engines.missing} \\(DOCKER_HOST\\) does not answer`), show("make demo", outcome));
    assert.match(outcome.stderr, /unset DOCKER_HOST/, show("make demo", outcome));
  });

  test("scripts/setup.sh on this machine, where everything is installed and running, exits 0 within 30 s", async () => {
    const outcome = await run(["bash", "scripts/setup.sh", "busybox"], {});
    assert.equal(outcome.code, 0, show("setup", outcome));
    assert.ok(outcome.ms < 30_000, show("setup", outcome));
    assert.match(outcome.stdout, /setup: ready \(packages, Docker engine [^,]+, node_modules, images: busybox\)/, show("setup", outcome));
    assert.doesNotMatch(outcome.stdout, /=== setup:/, `nothing to install or start here\n${show("setup", outcome)}`);
  });

  describe("scripts/setup.sh as a user who is not root: prints the exact command and stops", () => {
    // A copy of the script in a folder any user can read (the checkout may be under /root); it
    // stops before it would need the rest of the checkout.
    const checkout = path.join(root, "checkout");
    const fakeBin = path.join(root, "fake-bin");
    const nobody = (argv: string[]) => ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "env", "HOME=/tmp", ...argv];
    before(() => {
      mkdirSync(path.join(checkout, "scripts"), { recursive: true });
      copyFileSync(path.join(repoRoot, "scripts", "setup.sh"), path.join(checkout, "scripts", "setup.sh"));
      for (const dir of [checkout, path.join(checkout, "scripts")]) chmodSync(dir, 0o755);
      // dpkg-query as on a machine without zstd: everything else installed
      mkdirSync(fakeBin, { mode: 0o755 });
      writeFileSync(
        path.join(fakeBin, "dpkg-query"),
        '#!/bin/sh\nshift 2\nfor p in "$@"; do [ "$p" = zstd ] && echo "zstd not-installed" || echo "$p installed"; done\n',
        { mode: 0o755 },
      );
    });

    test("a missing package: the sudo apt-get install command, exit 1, engine never asked", async () => {
      const outcome = await run(nobody(["bash", path.join(checkout, "scripts", "setup.sh"), "busybox"]), { PATH: `${fakeBin}:${process.env.PATH}`, DOCKER_HOST: `unix://${engines.hung}` });
      assert.equal(outcome.code, 1, show("setup", outcome));
      assert.ok(outcome.ms < 10_000, show("setup", outcome));
      assert.match(outcome.stderr, /missing packages: zstd\b/, show("setup", outcome));
      assert.match(outcome.stderr, /sudo apt-get update && sudo apt-get install -y --no-install-recommends zstd\n/, show("setup", outcome));
      assert.match(outcome.stderr, /sudo bash scripts\/setup\.sh/, show("setup", outcome));
    });

    test("no engine on this machine and no dockerd: the command that starts it, exit 1", async () => {
      // /run of its own (no docker.sock) and a pid namespace of its own (no dockerd to see)
      const outcome = await run(["unshare", "-m", "-p", "-f", "--mount-proc", "sh", "-c", 'mount -t tmpfs tmpfs /run && exec "$@"', "sh", ...nobody(["env", "-u", "DOCKER_HOST", "bash", path.join(checkout, "scripts", "setup.sh"), "busybox"])], {});
      assert.equal(outcome.code, 1, show("setup", outcome));
      assert.ok(outcome.ms < 10_000, show("setup", outcome));
      assert.match(outcome.stderr, /no Docker engine answers at unix:\/\/\/var\/run\/docker\.sock \(DOCKER_HOST unset\)/, show("setup", outcome));
      assert.match(outcome.stderr, /Start it: sudo (systemctl start docker|sh -c 'nohup dockerd)/, show("setup", outcome));
      assert.match(outcome.stderr, /sudo bash scripts\/setup\.sh/, show("setup", outcome));
    });

    test("an engine whose socket this user may not use: the docker group command, exit 1", async () => {
      const outcome = await run(nobody(["env", "-u", "DOCKER_HOST", "bash", path.join(checkout, "scripts", "setup.sh")]), {});
      assert.equal(outcome.code, 1, show("setup", outcome));
      assert.match(outcome.stderr, /may not use the Docker engine's socket \/var\/run\/docker\.sock/, show("setup", outcome));
      assert.match(outcome.stderr, /sudo usermod -aG docker nobody/, show("setup", outcome));
    });

    test("DOCKER_HOST names a hung engine: says so within 30 s and never starts a dockerd", async () => {
      const outcome = await run(nobody(["bash", path.join(checkout, "scripts", "setup.sh")]), { DOCKER_HOST: `unix://${engines.hung}` });
      assert.equal(outcome.code, 1, show("setup", outcome));
      assert.ok(outcome.ms < 30_000, show("setup", outcome));
      assert.match(outcome.stderr, new RegExp(`the Docker engine at unix://${engines.hung} \\(DOCKER_HOST\\) does not answer: no answer within 20 s`), show("setup", outcome));
    });
  });

  describe("make demo on a machine with no dockerd and no images", () => {
    // Its data root beside the host engine's (same filesystem, so overlay2 works as there).
    const sandbox = mkdtempSync("/var/lib/composure-test-sandbox-");
    const work = tempDir("c23-demo-sandbox");
    const shim = path.join(work, "bin");
    after(() => rmSync(sandbox, { recursive: true, force: true }));

    test("the set-up starts dockerd and builds the images, and the demo ends with exit 0 and a verified run", { timeout: 1_200_000 }, async () => {
      for (const dir of ["lib", "etc", "log", "tmp"]) mkdirSync(path.join(sandbox, dir));
      mkdirSync(path.join(work, "tmp"));
      // The set-up starts `dockerd` from PATH: this one gets a network namespace of its own, so its
      // bridge and iptables rules never meet the host engine's (debootstrap still has the network).
      mkdirSync(shim);
      writeFileSync(path.join(shim, "dockerd"), `#!/bin/sh\nexec unshare -n ${JSON.stringify(await which("dockerd"))} "$@"\n`, { mode: 0o755 });
      const inside = `
set -euo pipefail
mount -t tmpfs tmpfs /run
mkdir -p /var/lib/docker /etc/docker
mount --bind "$SANDBOX/lib" /var/lib/docker
mount --bind "$SANDBOX/etc" /etc/docker
mount --bind "$SANDBOX/log" /var/log
unset DOCKER_HOST
if docker version >/dev/null 2>&1 || pgrep -x dockerd >/dev/null; then echo "sandbox: an engine answers" >&2; exit 90; fi
echo "sandbox: no engine, data root holds $(ls -A /var/lib/docker | wc -l) entries"
status=0
make --no-print-directory demo || status=$?
echo "sandbox: make demo exit $status"
if [ "$status" = 0 ]; then make --no-print-directory demo-down >/dev/null 2>&1 || true; fi
# the engine stops cleanly (and its containers with it) before the namespace ends
if pid=$(pgrep -x dockerd); then kill -TERM $pid; for _ in $(seq 1 120); do kill -0 $pid 2>/dev/null || break; sleep 0.5; done; fi
exit $status`;
      const demoProject = `c23-demo-${process.pid}`;
      const outcome = await run(["unshare", "-m", "-p", "-f", "--mount-proc", "bash", "-c", inside], {
        SANDBOX: sandbox,
        PATH: `${shim}:${process.env.PATH}`,
        DEMO_PROJECT: demoProject,
        DESTINATION: path.join(work, "backups"),
        METRICS_DIR: path.join(work, "metrics"),
        // a temp folder of its own: composure on the host sweeps pipe folders whose pid it does not see
        TMPDIR: path.join(work, "tmp"),
      }, repoRoot, 1_100_000);
      const shown = show("make demo in the sandbox", outcome);
      assert.match(outcome.stdout, /sandbox: no engine, data root holds 0 entries/, shown);
      assert.equal(outcome.code, 0, shown);
      assert.match(outcome.stdout, /=== setup: starting dockerd/, shown);
      for (const image of ["busybox", "postgres", "mariadb"]) assert.match(outcome.stderr, new RegExp(`images: ${image}: building`), shown);
      assert.match(outcome.stderr, /verification passed/, shown);
      const runs = backupsOf(path.join(work, "backups", demoProject)).runIds();
      assert.equal(runs.length, 1, shown);
      const manifest = backupsOf(path.join(work, "backups", demoProject)).manifestOf(runs[0]);
      assert.equal(manifest.outcome, "success", shown);
      assert.deepEqual(manifest.services.map((service: { name: string }) => service.name).sort(), ["db", "mariadb", "web", "worker"]);
    });
  });
});

async function which(command: string): Promise<string> {
  const found = await run(["sh", "-c", 'command -v "$0"', command], {});
  assert.equal(found.code, 0, `${command} is not installed`);
  return found.stdout.trim();
}

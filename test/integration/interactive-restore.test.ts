// make restore on a terminal without RUN=: the operator picks a run and the services from a list,
// sees the plan and confirms it. Driven through a real pseudo-terminal (tmux) and make, as an
// operator types it; without a terminal (or with CI=true) nothing is asked and RUN=latest holds.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { busyboxProject, commandEnvironment, composure, inVolumes, repoRoot, requireDocker, tempDir } from "../support/composure.ts";
import { Terminal } from "../support/terminal.ts";

describe("interactive restore", { timeout: 600_000 }, () => {
  const project = busyboxProject("cmpt-pick", { app: ["data:/data"], cache: ["state:/state"] });
  const destination = tempDir("interactive-dest");
  const env = { PROJECT: project.name, DESTINATION: destination };
  const volumes = [`${project.volume("data")}:/data`, `${project.volume("state")}:/state`];
  const content = async () => (await inVolumes(volumes, "cat /data/version /state/version")).trim().split("\n");
  const runIds = async (): Promise<string[]> => JSON.parse((await composure("list", env, ["--json"])).stdout).map((row: { run: string }) => row.run);
  let older = "";

  /** `make restore` in a terminal, as an operator at it (not CI, whatever the test runner's environment says). */
  const makeRestore = (extra: Record<string, string> = {}) =>
    Terminal.start(["make", "-s", "restore"], {
      cwd: repoRoot,
      env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/root", ...(process.env.DOCKER_HOST ? { DOCKER_HOST: process.env.DOCKER_HOST } : {}), CI: "", ...commandEnvironment(env), ...extra },
    });

  /** Answers the three questions: the run, the services, the confirmation; returns the exit code of make and the last screen. */
  async function pickAndAnswer(run: string, confirmation: string): Promise<{ code: number; screen: string }> {
    const terminal = await makeRestore();
    try {
      await terminal.waitFor(/Run to restore \(number or run id\) \[1\]:/);
      await terminal.keys(run, "Enter");
      await terminal.waitFor(/Services to restore \(numbers or names, comma-separated\) \[all\]:/);
      await terminal.keys("Enter");
      await terminal.waitFor(/Type "yes" to proceed:/);
      await terminal.keys(confirmation, "Enter");
      return { code: await terminal.exitCode(), screen: await terminal.screen() };
    } finally {
      await terminal.close();
    }
  }

  before(async () => {
    await requireDocker();
    await project.up();
    for (const version of ["one", "two"]) {
      await inVolumes(volumes, `echo ${version} > /data/version; echo ${version} > /state/version`);
      const backup = await composure("backup", env);
      assert.equal(backup.code, 0, backup.stderr);
    }
    [, older] = await runIds();
  });
  after(async () => {
    await project.down().catch(() => undefined);
  });

  test("answering no at the confirmation changes nothing and exits 4", async () => {
    const startedBefore = await project.startedAt("app");
    const { code, screen } = await pickAndAnswer("2", "no");
    assert.match(screen, new RegExp(`restore of run ${older} `), "the plan is the picked run's");
    assert.match(screen, /restore cancelled: nothing was changed/);
    assert.match(screen, /Error 4/, "make reports the command's exit code 4");
    assert.equal(code, 2, "make itself exits 2 when its command fails");
    assert.deepEqual(await content(), ["two", "two"]);
    assert.equal(await project.startedAt("app"), startedBefore, "app was not stopped");
    assert.equal((await runIds()).length, 2, "no rescue run was made");
  });

  test("Ctrl-C at a question cancels the restore: exit 4, nothing changed", async () => {
    const terminal = await makeRestore();
    try {
      await terminal.waitFor(/Run to restore/);
      await terminal.keys("C-c");
      assert.equal(await terminal.exitCode(), 2);
      const screen = await terminal.screen();
      assert.match(screen, /Run to restore .*\n.*restore cancelled: nothing was changed/);
      assert.match(screen, /Error 4/);
    } finally {
      await terminal.close();
    }
    assert.deepEqual(await content(), ["two", "two"]);
  });

  test("picking the second-newest run and all services restores that run", async () => {
    const { code, screen } = await pickAndAnswer("2", "yes");
    assert.equal(code, 0, screen);
    const table = screen.slice(0, screen.indexOf("Run to restore"));
    assert.match(table, /#\s+RUN\s+STARTED\s+SERVICES\s+SIZE\s+VERIFIED\s+TAGS\s+NOTE/);
    assert.match(table, new RegExp(`\\s2\\s+${older}\\s+\\S+\\s+app,cache\\s+\\d`), "the second-newest run is number 2");
    assert.match(screen, /1\s+app \(volume\)\n\s+2\s+cache \(volume\)/, "the services are offered by number");
    assert.match(screen, new RegExp(`restore of run ${older} `));
    assert.deepEqual(await content(), ["one", "one"], "both volumes hold the older run's content");
    assert.ok(await project.running("app"));
    assert.ok(await project.running("cache"));
  });

  test("without a terminal, make restore FORCE=1 restores the latest run, even with CI=true", async () => {
    const restore = await composure("restore", { ...env, FORCE: "1", NO_RESCUE: "1", CI: "true" });
    assert.equal(restore.code, 0, restore.stderr);
    assert.doesNotMatch(restore.stderr, /Run to restore/);
    assert.deepEqual(await content(), ["two", "two"], "the newest run, not the rescue copy the previous restore made");
  });

  test("on a terminal with CI=true nothing is asked: without FORCE=1 the restore is refused", async () => {
    const terminal = await makeRestore({ CI: "true" });
    try {
      assert.equal(await terminal.exitCode(), 2);
      const screen = await terminal.screen();
      assert.doesNotMatch(screen, /Run to restore|Type "yes"/);
      assert.match(screen, /run it again with FORCE=1/);
      assert.match(screen, /Error 4/);
    } finally {
      await terminal.close();
    }
  });
});

// The Prometheus rules through promtool (Debian's prometheus package): syntax, and the unit tests
// in composure-alerts.test.yml that show every alert firing and not firing.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, test } from "node:test";
import { parse as parseYaml } from "yaml";

const rulesDir = path.resolve(import.meta.dirname, "../../exporters/prometheus");

function promtool(...args: string[]) {
  const result = spawnSync("promtool", args, { cwd: rulesDir, encoding: "utf8" });
  if (result.error) throw new Error(`cannot run promtool (install Debian's prometheus package): ${result.error.message}`);
  return result;
}

describe("Prometheus alert rules", () => {
  test("promtool check rules accepts the alert and recording rules", () => {
    const result = promtool("check", "rules", "composure-alerts.yml", "recording-rules.yml");
    assert.equal(result.status, 0, result.stdout + result.stderr);
  });

  test("promtool test rules passes, with every alert both firing and not firing", () => {
    const result = promtool("test", "rules", "composure-alerts.test.yml");
    assert.equal(result.status, 0, result.stdout + result.stderr);
    assert.match(result.stdout, /SUCCESS/);
    const alerts = (parseYaml(readFileSync(path.join(rulesDir, "composure-alerts.yml"), "utf8")) as { groups: { rules: { alert?: string }[] }[] }).groups
      .flatMap((group) => group.rules)
      .flatMap((rule) => (rule.alert ? [rule.alert] : []));
    const tests = (parseYaml(readFileSync(path.join(rulesDir, "composure-alerts.test.yml"), "utf8")) as { tests: { alert_rule_test?: { alertname: string; exp_alerts?: unknown[] }[] }[] }).tests.flatMap((group) => group.alert_rule_test ?? []);
    for (const alert of ["ComposureBackupTooOld", "ComposureLastRunFailed", "ComposureOffsiteCopyFailed", "ComposureRestoreDrillFailed", "ComposureMetricsAbsent", ...alerts]) {
      const cases = tests.filter((entry) => entry.alertname === alert);
      assert.ok(cases.some((entry) => (entry.exp_alerts ?? []).length > 0), `${alert} is tested firing`);
      assert.ok(cases.some((entry) => (entry.exp_alerts ?? []).length === 0), `${alert} is tested not firing`);
    }
  });
});

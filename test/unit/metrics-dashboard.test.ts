import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, test } from "node:test";
import { parse as parseYaml } from "yaml";
import { metricNames } from "../../scripts/lib/metrics/registry.ts";

const exporters = path.resolve(import.meta.dirname, "../../exporters");

const keywords = new Set(["by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset", "inf", "nan"]);

/**
 * The metric names a PromQL expression (or a Grafana label_values() query) reads: identifiers
 * that are not function calls, keywords, label names in matchers or grouping clauses, string
 * literals, durations or Grafana variables.
 */
export function metricNamesIn(expression: string): string[] {
  let text = expression
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""') // string literals
    .replace(/\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*/g, " ") // Grafana variables
    .replace(/\{[^}]*\}/g, " ") // label matchers
    .replace(/\[[^\]]*\]/g, " ") // ranges and subqueries
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, " "); // label lists
  text = text.replace(/\blabel_values\s*\(([^,)]*),[^)]*\)/g, " $1 "); // label_values(metric, label)
  const names = new Set<string>();
  for (const match of text.matchAll(/(?<![\w:.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?/g)) {
    const [, name, call] = match;
    if (call || keywords.has(name.toLowerCase())) continue;
    names.add(name);
  }
  return [...names];
}

function collectExpressions(node: unknown, found: string[] = []): string[] {
  if (Array.isArray(node)) node.forEach((item) => collectExpressions(item, found));
  else if (node && typeof node === "object") {
    for (const [key, value] of Object.entries(node)) {
      if ((key === "expr" || key === "query" || key === "definition") && typeof value === "string") found.push(value);
      else collectExpressions(value, found);
    }
  }
  return found;
}

describe("dashboard and rules use only what composure writes", () => {
  test("the name extractor reads metric names, not functions, labels or variables", () => {
    assert.deepEqual(
      metricNamesIn('sum by (project) (rate(composure_backups{project=~"$project",location="local"}[5m])) / on(project) group_left(tier) composure_last_run_success or vector(0) * 26 * 3600'),
      ["composure_backups", "composure_last_run_success"],
    );
    assert.deepEqual(metricNamesIn('label_values(composure_last_run_timestamp_seconds{project=~"$project"}, service)'), ["composure_last_run_timestamp_seconds"]);
    assert.deepEqual(metricNamesIn("(time() - composure:backup_age:hours) > 1e3"), ["composure:backup_age:hours"]);
  });

  test("every query of the Grafana dashboard refers only to metric names composure writes", () => {
    const dashboard = JSON.parse(readFileSync(path.join(exporters, "grafana/composure.json"), "utf8"));
    const expressions = collectExpressions(dashboard);
    assert.ok(expressions.length >= 10, `found ${expressions.length} queries`);
    const used = new Set<string>();
    for (const expression of expressions) {
      const names = metricNamesIn(expression);
      if (expression === "prometheus") continue; // the datasource variable's plugin id
      assert.ok(names.length > 0, `no metric in ${expression}`);
      for (const name of names) {
        assert.ok((metricNames as string[]).includes(name), `the dashboard queries ${name}, which composure does not write (in: ${expression})`);
        used.add(name);
      }
    }
    for (const name of ["composure_last_success_timestamp_seconds", "composure_last_run_success", "composure_last_archive_bytes", "composure_last_run_duration_seconds", "composure_last_downtime_seconds"]) {
      assert.ok(used.has(name), `the dashboard shows ${name}`);
    }
  });

  test("every panel has a unique id and a place on the grid", () => {
    const dashboard = JSON.parse(readFileSync(path.join(exporters, "grafana/composure.json"), "utf8"));
    const ids = dashboard.panels.map((panel: { id: number }) => panel.id);
    assert.equal(new Set(ids).size, ids.length);
    for (const panel of dashboard.panels) assert.ok(panel.gridPos && panel.gridPos.w > 0 && panel.gridPos.h > 0, panel.title);
  });

  test("alert and recording rules read composure's series (and node_exporter's textfile mtime) only", () => {
    const allowed = new Set<string>([...metricNames, "node_textfile_mtime_seconds"]);
    for (const file of ["prometheus/composure-alerts.yml", "prometheus/recording-rules.yml"]) {
      const rules = (parseYaml(readFileSync(path.join(exporters, file), "utf8")) as { groups: { rules: { expr: string }[] }[] }).groups.flatMap((group) => group.rules);
      for (const rule of rules) {
        for (const name of metricNamesIn(rule.expr)) assert.ok(allowed.has(name), `${file} reads ${name} (in: ${rule.expr})`);
      }
    }
  });
});

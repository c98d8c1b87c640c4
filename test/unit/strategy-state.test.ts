// No strategy keeps per-run state at module level (docs/architecture.md, "A backup run"): what a
// capture knows lives in its session, what spans the services of a run lives in the run's scope
// (ctx.scope). A Map, WeakMap or Set made when a module loads outlives every run and is shared by
// all of them, so it is refused here unless it is listed below with the reason it holds no
// per-run state. Read from the sources with the TypeScript parser.
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import ts from "typescript";
import { createRunScope, type ScopeSlot } from "../../scripts/lib/strategies/types.ts";

const strategies = path.resolve(import.meta.dirname, "../../scripts/lib/strategies");

/**
 * Module-level collections that hold no per-run state: "<file relative to strategies/>:<variable>"
 * -> why (an immutable constant, a cache of facts that never change). None today.
 */
const allowed: Record<string, string> = {};

const collections = new Set(["Map", "WeakMap", "Set", "WeakSet"]);

/** True when `node` runs when its module loads: not inside a function, unless that function is called right there. */
function atModuleLoad(node: ts.Node): boolean {
  for (let at = node.parent; at; at = at.parent) {
    if (ts.isFunctionLike(at)) {
      const called = ts.isParenthesizedExpression(at.parent) ? at.parent.parent : at.parent;
      if (!(called && ts.isCallExpression(called) && (called.expression === at || called.expression === at.parent))) return false;
    }
    // Instance fields are made per object; static fields and static blocks once per module.
    if (ts.isPropertyDeclaration(at) && !at.modifiers?.some((modifier) => modifier.kind === ts.SyntaxKind.StaticKeyword)) return false;
  }
  return true;
}

/** The top-level variable (or class) a node belongs to, for messages and the allow-list. */
function ownerOf(node: ts.Node): string {
  let at: ts.Node = node;
  while (at.parent && !ts.isSourceFile(at.parent)) at = at.parent;
  if (ts.isVariableStatement(at)) return at.declarationList.declarations.map((declaration) => declaration.name.getText()).join(",");
  if ((ts.isClassDeclaration(at) || ts.isFunctionDeclaration(at)) && at.name) return at.name.text;
  return `line ${at.getSourceFile().getLineAndCharacterOfPosition(at.getStart()).line + 1}`;
}

/** "<owner>: new <Kind>(" for every collection made at module load, and every module-level `let`/`var`. */
export function moduleState(fileName: string, source: string): string[] {
  const file = ts.createSourceFile(fileName, source, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const found: string[] = [];
  const visit = (node: ts.Node) => {
    if (ts.isNewExpression(node) && ts.isIdentifier(node.expression) && collections.has(node.expression.text) && atModuleLoad(node)) {
      found.push(`${ownerOf(node)}: new ${node.expression.text}(`);
    }
    ts.forEachChild(node, visit);
  };
  visit(file);
  for (const statement of file.statements) {
    if (ts.isVariableStatement(statement) && !(statement.declarationList.flags & ts.NodeFlags.Const)) found.push(`${ownerOf(statement.declarationList.declarations[0])}: module-level let/var`);
  }
  return found;
}

test("the check finds state made at module load, and not what functions make", () => {
  const source = `
    const prepared = new WeakMap<object, string>();
    export const runs: Map<string, number> = new Map();
    const cached = (() => new Set<string>())();
    class Registry { static all = new Map(); own = new Map(); }
    let counter = 0;
    const slot = { name: "x", create: () => new Map<string, string>() };
    function fresh() { return new Set([1]); }
    const names = ["a", "b"] as const;
  `;
  assert.deepEqual(moduleState("sample.ts", source), ["prepared: new WeakMap(", "runs: new Map(", "cached: new Set(", "Registry: new Map(", "counter: module-level let/var"]);
});

test("no strategy module keeps a Map, WeakMap or Set (or a let) made at module load, except the listed constants", () => {
  const files = readdirSync(strategies, { recursive: true, encoding: "utf8" }).filter((file) => file.endsWith(".ts"));
  const found = files.flatMap((file) => moduleState(file, readFileSync(path.join(strategies, file), "utf8")).map((entry) => `${file}:${entry}`));
  const key = (entry: string) => entry.slice(0, entry.indexOf(": "));
  assert.deepEqual(
    found.filter((entry) => !(key(entry) in allowed)),
    [],
    "per-run state belongs in the session (CaptureSession) or the run's scope (ctx.scope with a ScopeSlot), not in a module",
  );
  const stale = Object.keys(allowed).filter((entry) => !found.some((candidate) => key(candidate) === entry));
  assert.deepEqual(stale, [], "allow-list entries that no longer match anything");
});

test("a run scope keeps one value per slot for its run, and a new scope starts empty", () => {
  const slot: ScopeSlot<Map<string, string>> = { name: "test: captured clusters", create: () => new Map() };
  const run = createRunScope();
  run.get(slot).set("ring", "cassandra1");
  assert.equal(run.get(slot).get("ring"), "cassandra1");
  assert.equal(createRunScope().get(slot).size, 0, "the next run does not see the last run's state");
});

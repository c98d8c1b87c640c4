// The layers of scripts/lib point one way (docs/architecture.md): a module imports only modules of
// its own layer or of the layers below it. Read from the source files' relative imports.
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";

const lib = path.resolve(import.meta.dirname, "../../scripts/lib");

/** Top to bottom; a module's layer is its first path segment under scripts/lib. */
const layers: string[][] = [
  ["cli.ts", "schedule"],
  ["pipeline"],
  ["metrics", "notifications"],
  ["strategies"],
  ["store"],
  ["lifecycle", "archive", "remote"],
  ["docker", "compose"],
  ["catalog", "config"],
  ["errors.ts", "log.ts", "shell.ts", "process-identity.ts", "checkout.ts"],
];

const layerOf = (file: string) => layers.findIndex((names) => names.includes(file.split("/")[0]));

/** Every relative import of every .ts file under scripts/lib, as paths relative to scripts/lib. */
function imports(): { from: string; to: string }[] {
  const files = readdirSync(lib, { recursive: true, encoding: "utf8" }).filter((file) => file.endsWith(".ts"));
  return files.flatMap((from) =>
    [...readFileSync(path.join(lib, from), "utf8").matchAll(/^(?:import|export)\b[^;]*?\bfrom\s+"(\.[^"]+)"/gms)].map((match) => ({
      from,
      to: path.relative(lib, path.resolve(path.dirname(path.join(lib, from)), match[1])),
    })),
  );
}

test("every module of scripts/lib belongs to a layer", () => {
  const files = readdirSync(lib, { recursive: true, encoding: "utf8" }).filter((file) => file.endsWith(".ts"));
  assert.deepEqual(files.filter((file) => layerOf(file) === -1), []);
});

test("no import points from a lower layer to a higher one", () => {
  const upward = imports().filter(({ from, to }) => layerOf(to) < layerOf(from));
  assert.deepEqual(upward.map(({ from, to }) => `${from} -> ${to}`), []);
});

test("the pipeline reaches the strategies only through the registry and the Strategy types", () => {
  const inside = imports().filter(({ from, to }) => !from.startsWith("strategies/") && to.startsWith("strategies/") && !["strategies/registry.ts", "strategies/types.ts"].includes(to));
  assert.deepEqual(inside.map(({ from, to }) => `${from} -> ${to}`), []);
});

test("a strategy folder imports no other strategy's folder; shared/ imports none", () => {
  const kindOf = (file: string) => file.split("/")[1];
  const crossing = imports().filter(({ from, to }) => {
    if (!from.startsWith("strategies/") || !to.startsWith("strategies/") || from === "strategies/registry.ts") return false;
    const target = kindOf(to);
    return target !== kindOf(from) && target !== "shared" && target !== "types.ts";
  });
  assert.deepEqual(crossing.map(({ from, to }) => `${from} -> ${to}`), []);
});

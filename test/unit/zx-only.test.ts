// composure's child processes go through zx ($ with argv interpolation, nothrow, quiet, ...): a
// module of scripts/ that spawns by hand (node:child_process) says why, in a comment on the line
// above the import that starts with "// hand-spawned:". Type-only imports spawn nothing.
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, test } from "node:test";

const scripts = path.resolve(import.meta.dirname, "../../scripts");
const spawning = /^\s*import\s+(?!type\s)[^;]*?["'](node:)?child_process["']|\b(import|require)\s*\(\s*["'](node:)?child_process["']/;
const reason = /^\s*\/\/ hand-spawned: \S.{10,}/;

/** "file:line: import" for every import of node:child_process under `dir` without its reason above it. */
function unexplainedSpawning(dir: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile() || !entry.name.endsWith(".ts")) continue;
    const file = path.join(entry.parentPath, entry.name);
    const lines = readFileSync(file, "utf8").split("\n");
    lines.forEach((line, index) => {
      if (spawning.test(line) && !reason.test(lines[index - 1] ?? "")) found.push(`${path.relative(dir, file)}:${index + 1}: ${line.trim()}`);
    });
  }
  return found;
}

describe("child processes go through zx", () => {
  test("no module of scripts/ imports node:child_process without a '// hand-spawned:' reason above the import", () => {
    assert.deepEqual(unexplainedSpawning(scripts), []);
  });

  test("the check finds a bare import, a dynamic one and one whose comment gives no reason; it passes a reason and a type", () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "composure-zx-only-"));
    try {
      const modules: Record<string, string> = {
        "bare.ts": 'import { spawn } from "node:child_process";\n',
        "old-name.ts": "// runs things\nimport * as cp from 'child_process';\n",
        "dynamic.ts": 'const { spawnSync } = await import("node:child_process");\n',
        "no-reason.ts": '// hand-spawned:\nimport { spawn } from "node:child_process";\n',
        "explained.ts": '// hand-spawned: zx cannot hand a stream on with backpressure\nimport { spawn } from "node:child_process";\n',
        "typed.ts": 'import type { ChildProcess } from "node:child_process";\n',
      };
      for (const [name, text] of Object.entries(modules)) writeFileSync(path.join(dir, name), text);
      assert.deepEqual(unexplainedSpawning(dir).map((finding) => finding.split(":")[0]).sort(), ["bare.ts", "dynamic.ts", "no-reason.ts", "old-name.ts"]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

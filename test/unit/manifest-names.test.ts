// Names in a manifest (run id, project, services, artifact paths, volumes, databases) with control
// characters or invalid UTF-8 are refused, naming the field; free text (errors, reasons) and
// ordinary non-ASCII names pass. Names inside archives are not the manifest's business.
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, test } from "node:test";
import { nameProblem, readManifest, writeManifest, type Manifest } from "../../scripts/lib/catalog/manifest.ts";
import { createRunDir } from "../../scripts/lib/catalog/runs.ts";

function manifestFor(runId: string): Manifest {
  return {
    format: "composure/1", project: "shop", runId, host: "h", startedAt: "2026-01-01T00:00:00Z", finishedAt: "2026-01-01T00:00:01Z", outcome: "success",
    services: [{
      name: "db", strategy: "volume", status: "ok", stopped: ["shop-db-1"], downtimeSeconds: 0, durationSeconds: 1,
      artifacts: [{ path: "db/data.tar.zst", bytes: 1, sha256: "a".repeat(64), compression: "zstd", volume: { name: "shop_data", kind: "volume", composeName: "data", sharedWith: [] }, facts: { database: "app" } }],
    }],
  };
}

/** A run folder holding `manifest` after `edit`; returns the folder. */
async function runWith(edit: (manifest: Manifest) => void): Promise<string> {
  const { runId, runDir } = await createRunDir(mkdtempSync(path.join(os.tmpdir(), "composure-unit-")), "shop", new Date());
  const manifest = manifestFor(runId);
  edit(manifest);
  await writeManifest(runDir, manifest);
  return runDir;
}

const artifact = (manifest: Manifest) => manifest.services[0].artifacts[0];

// field as readManifest names it -> how to put a bad value there
const fields: Record<string, (manifest: Manifest, value: string) => void> = {
  project: (manifest, value) => (manifest.project = value),
  "services.0.name": (manifest, value) => (manifest.services[0].name = value),
  "services.0.stopped.0": (manifest, value) => (manifest.services[0].stopped[0] = value),
  "services.0.artifacts.0.path": (manifest, value) => (artifact(manifest).path = value),
  "services.0.artifacts.0.volume.name": (manifest, value) => (artifact(manifest).volume!.name = value),
  "services.0.artifacts.0.volume.composeName": (manifest, value) => (artifact(manifest).volume!.composeName = value),
  "services.0.artifacts.0.facts.database": (manifest, value) => (artifact(manifest).facts!.database = value),
};

describe("names in a manifest", () => {
  test("control characters and invalid UTF-8 are told apart from ordinary names", () => {
    for (const good of ["shop_data", "données", "📦 box", "a b", "/srv/my data"]) assert.equal(nameProblem(good), undefined, good);
    assert.match(nameProblem("a\nb")!, /control character U\+000A/);
    assert.match(nameProblem("a\rb")!, /U\+000D/);
    assert.match(nameProblem("a\u0000b")!, /U\+0000/);
    assert.match(nameProblem("a\u001bb")!, /U\+001B/);
    assert.match(nameProblem("a\u007fb")!, /U\+007F/);
    assert.match(nameProblem("caf\ufffd")!, /not valid UTF-8 .*U\+FFFD/);
    assert.match(nameProblem("x\ud800")!, /lone surrogate/);
    assert.match(nameProblem("\udc00x")!, /lone surrogate/);
  });

  for (const [field, set] of Object.entries(fields)) {
    test(`a newline in ${field} is refused, naming the field`, async () => {
      const runDir = await runWith((manifest) => set(manifest, "evil\nname"));
      await assert.rejects(readManifest(runDir, field === "project" ? undefined : "shop"), (error: Error) => {
        assert.ok(error.message.includes(`${field}: "evil\\nname" contains the control character U+000A`), error.message);
        return true;
      });
    });
  }

  test("a run id with a control character is refused even in a folder of that name", async () => {
    const destination = mkdtempSync(path.join(os.tmpdir(), "composure-unit-"));
    const { runId, runDir } = await createRunDir(destination, "shop", new Date(), "\r");
    await writeManifest(runDir, manifestFor(runId));
    await assert.rejects(readManifest(runDir, "shop"), /runId: .* control character U\+000D/);
  });

  test("bytes that are not UTF-8 in the file and lone surrogate escapes are refused", async () => {
    const runDir = await runWith(() => undefined);
    const file = path.join(runDir, "manifest.json");
    const text = JSON.stringify(manifestFor(path.basename(runDir)));
    writeFileSync(file, Buffer.concat([Buffer.from(text.slice(0, text.indexOf('"db"') + 3)), Buffer.from([0xff, 0xfe]), Buffer.from(text.slice(text.indexOf('"db"') + 3))]));
    await assert.rejects(readManifest(runDir, "shop"), /services\.0\.name: .*not valid UTF-8 \(it holds U\+FFFD/);
    writeFileSync(file, text.replace('"data"', '"data\\ud800"'));
    await assert.rejects(readManifest(runDir, "shop"), /services\.0\.artifacts\.0\.volume\.composeName: .*lone surrogate/);
  });

  test("artifact paths that leave the run are refused", async () => {
    for (const bad of ["../x.tar.zst", "/etc/passwd", "db/../../x", ".."]) {
      const runDir = await runWith((manifest) => (artifact(manifest).path = bad));
      await assert.rejects(readManifest(runDir, "shop"), /outside its run directory/, bad);
    }
  });

  test("ordinary non-ASCII names and multi-line free text are accepted", async () => {
    const runDir = await runWith((manifest) => {
      artifact(manifest).volume!.name = "/srv/données 📦";
      artifact(manifest).facts!.database = "café";
      manifest.services[0].error = "line one\nline two";
      manifest.reason = "why\r\nnot";
    });
    const manifest = await readManifest(runDir, "shop");
    assert.equal(artifact(manifest).volume!.name, "/srv/données 📦");
  });
});

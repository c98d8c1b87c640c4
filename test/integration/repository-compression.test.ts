// repository.compression reaches restic wherever it runs: the same compressible dump stored by the
// real restic with compression off takes its full size in the repository, with auto a fraction.
import assert from "node:assert/strict";
import { Readable } from "node:stream";
import { test } from "node:test";
import { parseConfig } from "../../scripts/lib/config/load.ts";
import { repositoryStore } from "../../scripts/lib/store/repository.ts";
import { openRepository, repositoryOf } from "../../scripts/lib/store/restic.ts";
import type { ArtifactStore } from "../../scripts/lib/store/types.ts";
import { tempDir } from "../support/composure.ts";

const noFallback = {} as ArtifactStore; // streams never fall back to archive files

/** 32 MiB of SQL-like text, every line different (nothing to deduplicate): zstd shrinks it many times over. */
function dump(): Readable {
  return Readable.from((function* () {
    for (let id = 0, written = 0; written < 32 * 1024 ** 2; ) {
      const lines = Array.from({ length: 1024 }, () => `INSERT INTO orders VALUES (${id++}, 'customer', 'shipped', 42.00, 'EUR');\n`).join("");
      written += lines.length;
      yield Buffer.from(lines);
    }
  })());
}

async function addedWith(compression: string): Promise<number> {
  const config = parseConfig({ destination: tempDir(`compression-${compression}`), repository: { compression } }, []);
  const repository = await openRepository(repositoryOf(config, "cmpt-compression"));
  const stored = await repositoryStore({ repository, service: "db", fallback: noFallback }).putStream("dump.sql", dump());
  return stored.repository!.addedBytes;
}

test("repository.compression: off stores the dump as it is, auto compresses it", async () => {
  const [off, auto] = [await addedWith("off"), await addedWith("auto")];
  assert.ok(off > 32 * 1024 ** 2 * 0.95, `compression off added ${off} bytes for 32 MiB`);
  assert.ok(auto < off / 10, `compression auto added ${auto} bytes, off ${off}`);
});

test("repository.compression refuses what restic does not know", () => {
  assert.throws(() => parseConfig({ repository: { compression: "fast" } }, []), /compression/);
});

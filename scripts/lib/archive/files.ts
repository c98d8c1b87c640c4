// Archive files on the host: compressed with multi-threaded zstd, hashed while they stream,
// written as <name>.partial (mode 0600) and renamed only when complete.
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { rename, rm } from "node:fs/promises";
import { Transform, type Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { spawnChecked } from "../shell.ts";

export interface StoredFile {
  bytes: number;
  sha256: string;
}

/** A pass-through that hashes and counts what flows by. */
export function createDigestTap(onBytes?: (count: number) => void) {
  const hash = createHash("sha256");
  let bytes = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      bytes += chunk.length;
      onBytes?.(chunk.length);
      callback(null, chunk);
    },
  });
  return { tap, result: (): StoredFile => ({ bytes, sha256: hash.digest("hex") }) };
}

/**
 * Compresses what `source` provides (a path zstd opens itself, such as a FIFO, or a stream) into
 * `target`, hashing the compressed bytes on the way.
 */
export async function writeCompressed(
  source: string | Readable,
  target: string,
  level: number,
  onBytes?: (count: number) => void,
): Promise<StoredFile> {
  const partial = `${target}.partial`;
  const fromPath = typeof source === "string";
  const zstd = spawnChecked("zstd", ["-T0", `-${level}`, "-q", "-c", ...(fromPath ? ["--", source] : [])], [fromPath ? "ignore" : "pipe", "pipe", "pipe"]);
  const digest = createDigestTap(onBytes);
  try {
    const feeding = fromPath ? Promise.resolve() : pipeline(source, zstd.child.stdin!);
    await Promise.all([
      feeding,
      pipeline(zstd.child.stdout!, digest.tap, createWriteStream(partial, { mode: 0o600 })),
      zstd.done,
    ]);
    await rename(partial, target);
    return digest.result();
  } catch (error) {
    zstd.child.kill("SIGKILL");
    await rm(partial, { force: true });
    throw error;
  }
}

export class ChecksumError extends Error {
  name = "ChecksumError";
}

/**
 * The decompressed content of an archive file as a stream. The stored bytes are hashed on the
 * way in; with `expected`, `done` rejects when size or sha256 differ from the manifest.
 */
export function readDecompressed(file: string, expected?: StoredFile): { stream: Readable; done: Promise<void> } {
  const zstd = spawnChecked("zstd", ["-d", "-q", "-c"], ["pipe", "pipe", "pipe"]);
  const digest = createDigestTap();
  const feeding = pipeline(createReadStream(file), digest.tap, zstd.child.stdin!);
  const done = Promise.all([feeding, zstd.done]).then(() => {
    if (!expected) return;
    const actual = digest.result();
    if (actual.bytes !== expected.bytes) {
      throw new ChecksumError(`${file} has ${actual.bytes} bytes, the manifest says ${expected.bytes}: the archive is truncated or was replaced`);
    }
    if (actual.sha256 !== expected.sha256) {
      throw new ChecksumError(`${file} does not match its sha256 in the manifest: the archive is corrupt`);
    }
  });
  done.catch(() => zstd.child.kill("SIGKILL"));
  return { stream: zstd.child.stdout!, done };
}

export async function hashFile(file: string): Promise<StoredFile> {
  const digest = createDigestTap();
  await pipeline(createReadStream(file), digest.tap, async function* (source) {
    for await (const _chunk of source) {
      // drain: only the digest matters
    }
  });
  return digest.result();
}

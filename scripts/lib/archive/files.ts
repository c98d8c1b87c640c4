// Archive files on the host: compressed (zstd by default), optionally encrypted with age, hashed
// while they stream, written as <name>.partial (mode 0600) and renamed only when complete.
import { createHash } from "node:crypto";
import path from "node:path";
import { createReadStream, createWriteStream } from "node:fs";
import { rename, rm } from "node:fs/promises";
import { Transform, type Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { spawnSync } from "node:child_process";
import { spawnChecked, type Spawned } from "../shell.ts";

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
 * How archives are encoded, set once per process from composure.yml: zstd (multi-threaded,
 * default) or gzip (pigz when installed, for compatibility), optionally encrypted for age
 * recipients (public keys: a backup needs no secret; the identity is needed to read it back).
 */
export interface ArchiveCodec {
  compression: "zstd" | "gzip";
  recipients: string[];
  identityFile?: string;
}

let codec: ArchiveCodec = { compression: "zstd", recipients: [] };

export function configureArchives(settings: ArchiveCodec): void {
  codec = settings;
}

export interface WrittenFile extends StoredFile {
  /** The path actually written: the target with the codec's suffixes (.gz instead of .zst, + .age). */
  file: string;
  compression: "zstd" | "gzip";
  encryption: "none" | "age";
}

function finalName(target: string): string {
  const base = codec.compression === "gzip" ? target.replace(/\.zst$/, ".gz") : target;
  return codec.recipients.length ? `${base}.age` : base;
}

function compressorArgs(level: number, input?: string): [string, string[]] {
  const from = input ? ["--", input] : [];
  if (codec.compression === "zstd") return ["zstd", ["-T0", `-${level}`, "-q", "-c", ...from]];
  const gzip = hasPigz() ? "pigz" : "gzip";
  return [gzip, [`-${Math.min(level, 9)}`, "-c", ...(input ? [input] : [])]];
}

let pigz: boolean | undefined;
function hasPigz(): boolean {
  pigz ??= spawnSync("pigz", ["--version"]).status === 0;
  return pigz;
}

/**
 * Compresses (and encrypts, when recipients are configured) what `source` provides (a path the
 * compressor opens itself, such as a FIFO, or a stream) into the target, hashing the stored
 * bytes on the way. Written as .partial with mode 0600, renamed when complete.
 */
export async function writeCompressed(source: string | Readable, target: string, level: number, onBytes?: (count: number) => void): Promise<WrittenFile> {
  const file = finalName(target);
  const partial = `${file}.partial`;
  const fromPath = typeof source === "string";
  const [command, args] = compressorArgs(level, fromPath ? source : undefined);
  const compressor = spawnChecked(command, args, [fromPath ? "ignore" : "pipe", "pipe", "pipe"]);
  const encryptor = codec.recipients.length
    ? spawnChecked("age", codec.recipients.flatMap((recipient) => ["-r", recipient]), ["pipe", "pipe", "pipe"])
    : undefined;
  const stored = (encryptor ?? compressor).child.stdout!;
  const digest = createDigestTap(onBytes);
  try {
    const feeding = fromPath ? Promise.resolve() : pipeline(source, compressor.child.stdin!);
    const encrypting = encryptor ? pipeline(compressor.child.stdout!, encryptor.child.stdin!) : Promise.resolve();
    await Promise.all([feeding, encrypting, pipeline(stored, digest.tap, createWriteStream(partial, { mode: 0o600 })), compressor.done, encryptor?.done]);
    await rename(partial, file);
    return { ...digest.result(), file, compression: codec.compression, encryption: encryptor ? "age" : "none" };
  } catch (error) {
    compressor.child.kill("SIGKILL");
    encryptor?.child.kill("SIGKILL");
    await rm(partial, { force: true });
    throw error;
  }
}

/** The manifest fields of an artifact written by writeCompressed, relative to its run. */
export function artifactFields(runDir: string, written: WrittenFile) {
  const { bytes, sha256, compression, encryption } = written;
  return { path: path.relative(runDir, written.file), bytes, sha256, compression, encryption };
}

/** True when this process can read an encrypted archive (an identity file is configured). */
export const canDecrypt = () => Boolean(codec.identityFile);

export class ChecksumError extends Error {
  name = "ChecksumError";
}

export interface Encoding {
  compression?: "zstd" | "gzip";
  encryption?: "none" | "age";
}

/**
 * The decoded content of an archive file as a stream. The stored bytes are hashed on the way
 * in; with `expected`, `done` rejects when size or sha256 differ from the manifest. Encrypted
 * archives need the identity file (encryption.identity_file).
 */
export function readDecompressed(file: string, expected?: StoredFile, encoding: Encoding = {}): { stream: Readable; done: Promise<void> } {
  const steps: Spawned[] = [];
  if (encoding.encryption === "age") {
    if (!codec.identityFile) throw new Error(`${file} is encrypted with age: set encryption.identity_file in composure.yml (or AGE_IDENTITY_FILE) to read it`);
    steps.push(spawnChecked("age", ["-d", "-i", codec.identityFile], ["pipe", "pipe", "pipe"]));
  }
  const gzip = encoding.compression === "gzip";
  steps.push(spawnChecked(gzip ? "gzip" : "zstd", gzip ? ["-d", "-c"] : ["-d", "-q", "-c"], ["pipe", "pipe", "pipe"]));
  const digest = createDigestTap();
  const links = steps.slice(1).map((step, index) => pipeline(steps[index].child.stdout!, step.child.stdin!));
  const feeding = Promise.all([pipeline(createReadStream(file), digest.tap, steps[0].child.stdin!), ...links]);
  const done = Promise.allSettled([feeding, ...steps.map((step) => step.done)]).then((results) => {
    // A program's own error (a wrong age identity, corrupt zstd data) beats the broken pipes it causes.
    const failures = results.flatMap((result) => (result.status === "rejected" ? [result.reason as Error] : []));
    // ("Premature close": a pipe between two of them ended because one of them failed.)
    const primary = failures.find((error) => !/EPIPE|SIGPIPE|Premature close/.test(String(error?.message))) ?? failures[0];
    if (primary) throw primary;
    if (!expected) return;
    const actual = digest.result();
    if (actual.bytes !== expected.bytes) {
      throw new ChecksumError(`${file} has ${actual.bytes} bytes, the manifest says ${expected.bytes}: the archive is truncated or was replaced`);
    }
    if (actual.sha256 !== expected.sha256) {
      throw new ChecksumError(`${file} does not match its sha256 in the manifest: the archive is corrupt`);
    }
  });
  done.catch(() => steps.forEach((step) => step.child.kill("SIGKILL")));
  return { stream: steps[steps.length - 1].child.stdout!, done };
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

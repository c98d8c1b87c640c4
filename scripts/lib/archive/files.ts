// Archive files on the host: compressed (zstd by default), optionally encrypted with age, hashed
// while they are written, written as <name>.partial (mode 0600) and renamed only when complete.
import { createHash } from "node:crypto";
import path from "node:path";
import { open, rename, rm } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import os from "node:os";
import { $ } from "zx";
import type { Progress } from "../log.ts";
import { spawnChecked, type Spawned } from "../shell.ts";
import { fifoReadCounter, fileReadCounter, type ReadCounter } from "./read-counters.ts";

export interface StoredFile {
  bytes: number;
  sha256: string;
}

/**
 * Hashes `file` while a program appends to it, until `writing` settles, then to its end (a
 * reader never sees past what a write completed). Reading it back from the page cache, 1 MiB at
 * a time, takes half the CPU of passing the stream through Node in 64 KiB pipe chunks and a
 * write each: on 2 cores that CPU is what zstd's threads miss (measured: -0.5 s per GB).
 */
async function hashGrowingFile(file: string, writing: Promise<unknown>): Promise<StoredFile> {
  let written = false;
  writing.then(() => (written = true), () => (written = true));
  const hash = createHash("sha256");
  const buffer = Buffer.allocUnsafe(1 << 20);
  const handle = await open(file, "r");
  let bytes = 0;
  try {
    for (;;) {
      const last = written; // set before this read: it then reaches the end of everything written
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, bytes);
      if (bytesRead > 0) {
        hash.update(buffer.subarray(0, bytesRead));
        bytes += bytesRead;
      } else if (last) {
        break;
      } else {
        await sleep(20);
      }
    }
  } finally {
    await handle.close();
  }
  return { bytes, sha256: hash.digest("hex") };
}

export function hashFile(file: string): Promise<StoredFile> {
  return hashGrowingFile(file, Promise.resolve());
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
  pigz ??= $({ sync: true, quiet: true, nothrow: true })`pigz --version`.exitCode === 0;
  return pigz;
}

/** How one capture compresses: zstd's level, and the nice value of its programs (0: as composure). */
export interface Compression {
  level: number;
  /** A capture nothing waits for runs at a lower priority, so that a stopped service's capture gets the cores first. */
  niceness?: number;
}

/**
 * Compresses (and encrypts, when recipients are configured) what `source` provides (a path the
 * compressor opens itself, such as a FIFO, or a stream) into the target. The last program
 * writes the file itself (.partial, mode 0600, renamed when complete); Node hashes it as it grows.
 * `progress` counts the source's bytes as the compressor reads them.
 */
export async function writeCompressed(source: string | Readable, target: string, compression: Compression, progress?: Progress): Promise<WrittenFile> {
  const file = finalName(target);
  const partial = `${file}.partial`;
  const fromPath = typeof source === "string";
  const [command, args] = compressorArgs(compression.level, fromPath ? source : undefined);
  const encrypted = codec.recipients.length > 0;
  const output = await open(partial, "w", 0o600);
  let compressor: Spawned;
  let encryptor: Spawned | undefined;
  try {
    compressor = spawnChecked(command, args, [fromPath ? "ignore" : "pipe", encrypted ? "pipe" : output.fd, "pipe"]);
    encryptor = encrypted ? spawnChecked("age", codec.recipients.flatMap((recipient) => ["-r", recipient]), ["pipe", output.fd, "pipe"]) : undefined;
    for (const program of [compressor, encryptor]) if (compression.niceness && program?.child.pid) os.setPriority(program.child.pid, compression.niceness);
  } finally {
    await output.close(); // the programs hold their own copy
  }
  try {
    if (progress && fromPath && compressor.child.pid) progress.sample(fifoReadCounter(compressor.child.pid, source));
    // Attached with the pipeline, in the same tick: earlier, it would start the flow before the compressor's stdin takes it.
    else if (progress && typeof source !== "string") source.on("data", (chunk: Buffer) => progress.add(chunk.length));
    const feeding = fromPath ? Promise.resolve() : pipeline(source, compressor.child.stdin!);
    const encrypting = encryptor ? pipeline(compressor.child.stdout!, encryptor.child.stdin!) : Promise.resolve();
    const writing = Promise.all([feeding, encrypting, compressor.done, encryptor?.done]);
    const [stored] = await Promise.all([hashGrowingFile(partial, writing), writing]);
    await rename(partial, file);
    return { ...stored, file, compression: codec.compression, encryption: encryptor ? "age" : "none" };
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

/** Content read back: consume `stream`, then await `done` (it rejects on a checksum or decoding error). */
export interface Decoded {
  stream: Readable;
  done: Promise<void>;
  /**
   * For progress lines: the size of what is read (an archive file) and how much of it has been
   * read; without `read`, the stream's own bytes are what `size` measures.
   */
  source?: { size: number; read?: ReadCounter };
}

export interface Encoding {
  compression?: "zstd" | "gzip";
  encryption?: "none" | "age";
}

/**
 * The decoded content of an archive file as a stream. The first program (age or the decompressor)
 * reads the file itself; with `expected`, the stored bytes are hashed by a second read alongside
 * (the page cache serves it) and `done` rejects when size or sha256 differ from the manifest.
 * Piping the file through Node into the decompressor cost ~0.4 s of CPU per GB restored.
 * Encrypted archives need the identity file (encryption.identity_file).
 */
export function readDecompressed(file: string, expected?: StoredFile, encoding: Encoding = {}): Decoded {
  const steps: Spawned[] = [];
  const input = ["--", file];
  if (encoding.encryption === "age") {
    if (!codec.identityFile) throw new Error(`${file} is encrypted with age: set encryption.identity_file in composure.yml (or AGE_IDENTITY_FILE) to read it`);
    steps.push(spawnChecked("age", ["-d", "-i", codec.identityFile, ...input], ["ignore", "pipe", "pipe"]));
  }
  const gzip = encoding.compression === "gzip";
  const fromFile = steps.length === 0 ? input : [];
  steps.push(spawnChecked(gzip ? "gzip" : "zstd", [...(gzip ? ["-d", "-c"] : ["-d", "-q", "-c"]), ...fromFile], [fromFile.length ? "ignore" : "pipe", "pipe", "pipe"]));
  const links = steps.slice(1).map((step, index) => pipeline(steps[index].child.stdout!, step.child.stdin!));
  const checking = expected ? hashFile(file).then((actual) => checkStored(file, actual, expected)) : Promise.resolve();
  const done = Promise.allSettled([...links, ...steps.map((step) => step.done)]).then(async (results) => {
    // A program's own error (a wrong age identity, corrupt zstd data) beats the broken pipes it causes.
    const failures = results.flatMap((result) => (result.status === "rejected" ? [result.reason as Error] : []));
    // ("Premature close": a pipe between two of them ended because one of them failed.)
    const primary = failures.find((error) => !/EPIPE|SIGPIPE|Premature close/.test(String(error?.message))) ?? failures[0];
    await checking; // a wrong checksum explains a decoding error best
    if (primary) throw primary;
  });
  checking.catch(() => undefined); // reported through `done`
  done.catch(() => steps.forEach((step) => step.child.kill("SIGKILL")));
  const reader = steps[0].child.pid;
  const source = expected && reader ? { size: expected.bytes, read: fileReadCounter(reader, file) } : undefined;
  return { stream: steps[steps.length - 1].child.stdout!, done, source };
}

function checkStored(file: string, actual: StoredFile, expected: StoredFile): void {
  if (actual.bytes !== expected.bytes) {
    throw new ChecksumError(`${file} has ${actual.bytes} bytes, the manifest says ${expected.bytes}: the archive is truncated or was replaced`);
  }
  if (actual.sha256 !== expected.sha256) {
    throw new ChecksumError(`${file} does not match its sha256 in the manifest: the archive is corrupt`);
  }
}


// Moves tar streams between a helper container and archive files on the host.
//
// Local engine (the usual case): the helper's busybox tar reads/writes a FIFO bind-mounted from
// the host, and zstd on the host reads/writes the other end: no bytes pass through a logged
// stream or through Docker's API (see DESIGN.md: 10x faster than the attach path).
// Remote engine (DOCKER_HOST=tcp/ssh): the tar stream travels over an exec stream instead.
import { createReadStream, createWriteStream } from "node:fs";
import { rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { PassThrough, pipeline as chain, type Readable, type Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { isLocalEngine } from "../docker/engine.ts";
import type { Helper } from "../docker/helper.ts";
import { unblockFifoReader, unblockFifoWriter, type PipeDir } from "../docker/pipe-dir.ts";
import { log, startProgress, formatBytes, type Progress } from "../log.ts";
import { writeCompressed, type Compression, type Decoded, type WrittenFile } from "./files.ts";
import { createTarInspector, TarFormatError, type TarEntry, type TarSummary } from "./tar-inspector.ts";

let transportAnnounced = false;
function announceTransport(): void {
  if (transportAnnounced) return;
  transportAnnounced = true;
  log.info(isLocalEngine() ? "transfer: helper tar <-> host FIFO <-> zstd" : "transfer: remote engine, tar over exec streams");
}

/** What to put in the archive: by default everything in the directory, as it is. */
export interface CaptureOptions {
  /** Names relative to the directory (default ["."]). */
  entries?: string[];
  /** Archive what symlinks point to instead of the links (tar -h), e.g. VictoriaMetrics snapshots. */
  dereference?: boolean;
  /**
   * Entries to leave out (names relative to the directory). busybox tar has no exclude option:
   * the stream passes through a filter on the host instead of going from the FIFO to zstd
   * directly, and tar still reads what is left out.
   */
  exclude?: (name: string) => boolean;
  /** The tar stream's size, measured beside the capture (for the progress line; it may come late or not at all). */
  size?: Promise<number | undefined>;
}

/** Archives directory `dir` of the helper into `target` (.tar.zst). */
export async function captureDirectory(helper: Helper, pipe: PipeDir | undefined, dir: string, target: string, compression: Compression, label: string, options: CaptureOptions = {}): Promise<WrittenFile> {
  announceTransport();
  const progress = startProgress(label);
  options.size?.then((size) => size !== undefined && progress.expect(size), () => undefined);
  try {
    const stored = await captureWith(helper, pipe, dir, target, compression, options, progress);
    progress.done(`${formatBytes(stored.bytes)} stored`);
    return stored;
  } finally {
    progress.stop();
  }
}

/** captureDirectory, counting the tar stream's bytes as the compressor reads them. */
async function captureWith(helper: Helper, pipe: PipeDir | undefined, dir: string, target: string, compression: Compression, options: CaptureOptions, progress: Progress): Promise<WrittenFile> {
  const tarArgs = ["tar", options.dereference ? "chf" : "cf", pipe ? "/pipe/stream" : "-", "-C", dir, "--", ...(options.entries ?? ["."])];
  let stored: WrittenFile;
  const filter = options.exclude && createTarInspector({ validate: false, exclude: options.exclude });
  if (pipe) {
    const compressing = writeCompressed(filter ? filtered(pipe.fifo, filter) : pipe.fifo, target, compression, progress);
    compressing.catch(() => undefined); // awaited below, after tar: a disk-full error must not go unhandled meanwhile
    const tar = await helper.run(tarArgs).then((result) => ({ result }), (error: unknown) => ({ error }));
    if ("error" in tar || tar.result.exitCode !== 0) {
      await releaseUntilSettled(compressing, () => unblockFifoReader(pipe.fifo));
      const outcome = await compressing.then((written) => ({ written }), (error: unknown) => ({ error }));
      // e.g. ENOSPC: why tar's pipe broke (the filter's "truncated" only echoes tar's failure)
      if ("error" in outcome && !(filter && outcome.error instanceof TarFormatError)) throw outcome.error;
      if ("written" in outcome) await rm(outcome.written.file, { force: true });
      if ("error" in tar) throw tar.error; // the exec itself failed: e.g. the engine went away
      throw new Error(`tar in the helper failed (exit ${tar.result.exitCode}): ${tar.result.stderr.trim()}`);
    }
    stored = await compressing;
  } else {
    const stream = filter ?? new PassThrough({ highWaterMark: 1 << 20 });
    const compressing = writeCompressed(stream, target, compression, progress);
    const abort = new AbortController();
    compressing.catch(() => abort.abort());
    const tar = await helper.stream(tarArgs, stream, { signal: abort.signal }).catch(async (error: unknown) => {
      await compressing; // its error (e.g. ENOSPC) explains the abort better
      throw error;
    });
    stream.end();
    stored = await compressing;
    if (tar.exitCode !== 0) {
      await rm(stored.file, { force: true });
      throw new Error(`tar in the helper failed (exit ${tar.exitCode}): ${tar.stderr.trim()}`);
    }
  }
  return stored;
}

/** The FIFO read through `filter`; a failing filter closes the FIFO, so that tar stops (EPIPE) instead of waiting. */
function filtered(fifo: string, filter: Transform): Readable {
  return chain(createReadStream(fifo, { highWaterMark: 1 << 20 }), filter, () => undefined);
}

/**
 * Releases the other end of the FIFO until `work` settles: a program that reaches open() only
 * after a first release would otherwise wait there forever.
 */
async function releaseUntilSettled(work: Promise<unknown>, release: () => void): Promise<void> {
  let settled = false;
  work.then(() => (settled = true), () => (settled = true));
  while (!settled) {
    release();
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export interface Extraction {
  summary: TarSummary;
  /** Every directory and symlink, in archive order: busybox tar does not restore their mtimes. */
  timestamps: { name: string; mtime: number; type: TarEntry["type"] }[];
  root?: TarEntry;
}

/**
 * Extracts the tar stream `source` (an artifact read back) into `dir` of the helper. Every entry
 * is checked before tar sees it (no absolute paths, no '..', nothing written through a symlink,
 * no devices): a bad entry stops the stream and the extraction fails.
 */
export async function extractArchive(helper: Helper, pipe: PipeDir | undefined, source: Decoded, dir: string, label: string): Promise<Extraction> {
  announceTransport();
  const progress = startProgress(label);
  try {
    const result = await extractWith(helper, pipe, source, dir, progress);
    progress.done(`${result.summary.entries} entries, ${formatBytes(result.summary.dataBytes)}`);
    return result;
  } finally {
    progress.stop();
  }
}

/** extractArchive, counting what is read of the archive (or of the stream, when that is all there is). */
async function extractWith(helper: Helper, pipe: PipeDir | undefined, source: Decoded, dir: string, progress: Progress): Promise<Extraction> {
  countRead(source, progress);
  const result: Extraction = { summary: undefined as unknown as TarSummary, timestamps: [] };
  const inspector = createTarInspector({
    onEntry: (entry) => {
      if (entry.name === ".") result.root = entry;
      else if (entry.type === "directory" || entry.type === "symlink") result.timestamps.push({ name: entry.name, mtime: entry.mtime, type: entry.type });
    },
  });
  const tarArgs = ["tar", "xf", pipe ? "/pipe/stream" : "-", "--numeric-owner", "-C", dir];
  if (pipe) {
    // A large buffer keeps reading zstd while a write to the FIFO waits for tar (the default 16 KiB
    // let every 64 KiB chunk wait for its write before the next was read).
    const feeding = pipeline(source.stream, inspector, createWriteStream(pipe.fifo, { highWaterMark: 4 << 20 }));
    // If tar stops early, our open() of the FIFO (or a write) would wait forever: release it.
    const extracting = helper.run(tarArgs).then(
      async (tar) => {
        if (tar.exitCode !== 0) await releaseUntilSettled(feeding, () => unblockFifoWriter(pipe.fifo));
        return tar;
      },
      async (error: unknown) => {
        await releaseUntilSettled(feeding, () => unblockFifoWriter(pipe.fifo));
        throw error;
      },
    );
    const [tar, read, fed] = await Promise.allSettled([extracting, source.done, feeding]);
    // The most telling cause first: the stored file (checksum, decryption, decompression), then
    // an unsafe or broken entry, then tar itself; a broken pipe only echoes tar's failure.
    const echo = (reason: unknown) => /SIGPIPE|EPIPE/.test(String((reason as Error)?.message ?? reason));
    if (read.status === "rejected" && !echo(read.reason)) throw read.reason;
    const brokenPipe = fed.status === "rejected" && (fed.reason as NodeJS.ErrnoException).code === "EPIPE";
    if (fed.status === "rejected" && !brokenPipe) throw fed.reason;
    if (tar.status === "rejected") throw tar.reason;
    if (tar.value.exitCode !== 0) throw new Error(`tar in the helper failed (exit ${tar.value.exitCode}): ${tar.value.stderr.trim()}`);
    if (fed.status === "rejected") throw fed.reason;
    if (read.status === "rejected") throw read.reason;
  } else {
    throw new Error("restore through a remote engine is not supported yet: run composure on the Docker host");
  }
  result.summary = inspector.summary;
  return result;
}

/**
 * Sets `progress` to count what is read back: the archive file's bytes as its first program reads
 * them, against the file's size; else the stream's bytes (against the source's size when known).
 */
function countRead(source: Decoded, progress: Progress): void {
  if (source.source) progress.expect(source.source.size);
  if (source.source?.read) progress.sample(source.source.read);
  else source.stream.on("data", (chunk: Buffer) => progress.add(chunk.length));
}

/** Writes a script into the pipe directory (bytes kept as they are: names may not be UTF-8). */
export async function writeScript(pipe: PipeDir, name: string, lines: string[]): Promise<string> {
  await writeFile(path.join(pipe.dir, name), Buffer.from(`${lines.join("\n")}\n`, "latin1"), { mode: 0o600 });
  return `/pipe/${name}`;
}

/** Single-quotes a byte string for sh: safe for spaces, newlines, quotes and any other byte. */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/**
 * The shell lines that swap a fully extracted staging directory in for the old content of `root`
 * and put back what busybox tar leaves out (restoredMetadataLines).
 */
export function swapInStagedLines(root: string, staging: string, extraction: Extraction): string[] {
  return [
    "set -e",
    `cd ${shellQuote(root)}`,
    `find . -mindepth 1 -maxdepth 1 ! -name ${shellQuote(staging)} -exec rm -rf -- {} +`,
    `find ${shellQuote(staging)} -mindepth 1 -maxdepth 1 -exec mv -- {} . \\;`,
    `rmdir ${shellQuote(staging)}`,
    ...restoredMetadataLines(extraction),
  ];
}

/**
 * Run in the folder the archive was extracted to: what busybox tar leaves out, directory and
 * symlink mtimes (deepest first), and the root's own owner, mode and mtime.
 */
export function restoredMetadataLines(extraction: Extraction): string[] {
  const lines = [...extraction.timestamps].reverse().map((entry) => `touch -h -c -d @${entry.mtime} -- ${shellQuote(entry.name)}`);
  const rootEntry = extraction.root;
  if (rootEntry) {
    lines.push(`chown ${rootEntry.uid}:${rootEntry.gid} .`, `chmod ${(rootEntry.mode & 0o7777).toString(8)} .`, `touch -c -d @${rootEntry.mtime} .`);
  }
  return lines;
}

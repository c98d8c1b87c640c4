// Database dumps and loads through `docker exec`: the dump's stdout streams into zstd on the
// host (hashed on the way, with backpressure, never buffered whole), and a restore streams the
// decompressed archive into the loader's stdin. Exec streams are not logged by Docker.
import { rm } from "node:fs/promises";
import { PassThrough, Transform } from "node:stream";
import { execStreaming } from "../docker/containers.ts";
import { formatBytes, startProgress } from "../log.ts";
import { readDecompressed, writeCompressed, type Encoding, type StoredFile, type WrittenFile } from "./files.ts";

export interface ExecStreamOptions {
  /** KEY=value pairs for the command (credentials go here, never into argv). */
  env?: string[];
  user?: string;
  label: string;
}

/** Runs `argv` in the container and stores its stdout as a .zst archive at `target`. */
export async function dumpToArchive(containerId: string, argv: string[], target: string, level: number, options: ExecStreamOptions): Promise<WrittenFile> {
  const progress = startProgress(options.label);
  const output = new PassThrough({ highWaterMark: 4 << 20 });
  const compressing = writeCompressed(output, target, level, (count) => progress.add(count));
  // If the archive cannot be written (disk full), stop the dump instead of letting it block.
  const abort = new AbortController();
  compressing.catch(() => abort.abort());
  let result;
  try {
    result = await execStreaming(containerId, argv, output, { env: options.env, user: options.user, signal: abort.signal });
  } catch (error) {
    await compressing; // its error (e.g. ENOSPC) explains the abort better
    throw error;
  } finally {
    output.end();
  }
  const stored = await compressing;
  if (result.exitCode !== 0) {
    await rm(stored.file, { force: true });
    throw new Error(`${argv[0]} exited with ${result.exitCode}: ${result.stderr.trim() || "no message"}`);
  }
  progress.done(`${formatBytes(stored.bytes)} stored`);
  return stored;
}

/** Streams the decompressed `archive` (checked against `expected`) into `argv`'s stdin. */
export async function loadFromArchive(containerId: string, argv: string[], archive: string, expected: StoredFile & Encoding, options: ExecStreamOptions): Promise<string> {
  const progress = startProgress(options.label);
  const source = readDecompressed(archive, expected, expected);
  // Counted on the way through, not with a "data" listener: that would start the flow before the
  // exec reads stdin, and the first chunks (all of a small archive) would be lost.
  const counted = source.stream.pipe(
    new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        progress.add(chunk.length);
        callback(null, chunk);
      },
    }),
  );
  const output = new PassThrough();
  let stdout = "";
  output.on("data", (chunk: Buffer) => (stdout = (stdout + chunk.toString("utf8")).slice(-8000)));
  const [loaded, read] = await Promise.allSettled([execStreaming(containerId, argv, output, { env: options.env, user: options.user, stdin: counted }), source.done]);
  if (read.status === "rejected") throw read.reason;
  if (loaded.status === "rejected") throw loaded.reason;
  if (loaded.value.exitCode !== 0) throw new Error(`${argv[0]} exited with ${loaded.value.exitCode}: ${loaded.value.stderr.trim() || stdout.trim()}`);
  progress.done("loaded");
  return stdout;
}

// Database dumps and loads through `docker exec`: the dump's stdout streams into the service's
// store (with backpressure, never buffered whole), and a restore streams the artifact read back
// into the loader's stdin. Exec streams are not logged by Docker.
import { PassThrough, Transform } from "node:stream";
import { execStreaming } from "../docker/containers.ts";
import { startProgress } from "../log.ts";
import type { ArtifactStore, ReadBack, StoredArtifact } from "./types.ts";

export interface ExecStreamOptions {
  /** KEY=value pairs for the command (credentials go here, never into argv). */
  env?: string[];
  user?: string;
  label: string;
}

/** Runs `argv` in the container and stores its stdout as artifact `name` of `store`. */
export async function dumpToStore(store: ArtifactStore, name: string, containerId: string, argv: string[], options: ExecStreamOptions): Promise<StoredArtifact> {
  const output = new PassThrough({ highWaterMark: 4 << 20 });
  const storing = store.putStream(name, output, options.label);
  // If the artifact cannot be written (disk full), stop the dump instead of letting it block.
  const abort = new AbortController();
  storing.catch(() => abort.abort());
  let result;
  try {
    result = await execStreaming(containerId, argv, output, { env: options.env, user: options.user, signal: abort.signal });
  } catch (error) {
    await storing; // its error (e.g. ENOSPC) explains the abort better
    throw error;
  } finally {
    output.end();
  }
  const stored = await storing;
  if (result.exitCode !== 0) {
    await store.discard(stored);
    throw new Error(`${argv[0]} exited with ${result.exitCode}: ${result.stderr.trim() || "no message"}`);
  }
  return stored;
}

/** Streams an artifact read back (checked on the way) into `argv`'s stdin; returns the tail of its stdout. */
export async function loadFromStore(source: ReadBack, containerId: string, argv: string[], options: ExecStreamOptions): Promise<string> {
  const progress = startProgress(options.label);
  // What is read of the archive file against its size, when the reader can tell; else the bytes
  // of the stream, counted on the way through, not with a "data" listener: that would start the
  // flow before the exec reads stdin, and the first chunks (all of a small archive) would be lost.
  if (source.source) progress.expect(source.source.size);
  if (source.source?.read) progress.sample(source.source.read);
  const counting = !source.source?.read;
  const counted = source.stream.pipe(
    new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        if (counting) progress.add(chunk.length);
        callback(null, chunk);
      },
    }),
  );
  const output = new PassThrough();
  let stdout = "";
  output.on("data", (chunk: Buffer) => (stdout = (stdout + chunk.toString("utf8")).slice(-8000)));
  const [loaded, read] = await Promise.allSettled([execStreaming(containerId, argv, output, { env: options.env, user: options.user, stdin: counted }), source.done]);
  progress.stop();
  if (read.status === "rejected") throw read.reason;
  if (loaded.status === "rejected") throw loaded.reason;
  if (loaded.value.exitCode !== 0) throw new Error(`${argv[0]} exited with ${loaded.value.exitCode}: ${loaded.value.stderr.trim() || stdout.trim()}`);
  progress.done("loaded");
  return stdout;
}

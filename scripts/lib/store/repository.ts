// The repository engine: every source becomes a restic snapshot of the project's repository.
// Trees are read by restic on the host when composure may read them there (a volume's mountpoint,
// as root beside a local engine: the fastest, measured), else inside the helper that already
// mounts them; either way at the same path from run to run, tagged with the source's name, so
// that the previous snapshot of that source is its parent and unchanged files (same size, mtime,
// inode) are not read again. Streams (dumps) go through restic on the host (--stdin) under a
// stable file name, so unchanged chunks are stored once.
import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { open, rm } from "node:fs/promises";
import path from "node:path";
import { createInterface } from "node:readline";
import { PassThrough, type Readable } from "node:stream";
import type { Artifact } from "../catalog/manifest.ts";
import type { Helper } from "../docker/helper.ts";
import type { Extraction } from "../archive/tar-transfer.ts";
import type { TarEntry } from "../archive/tar-inspector.ts";
import { formatBytes, log, startProgress } from "../log.ts";
import { resticExcludes } from "../config/path-patterns.ts";
import { checkPassword, checkVersion, clearStaleLocks, lastMessage, restic, resticError, resticInHelperWithProgress, resticOnHostWithProgress, resticProcess, type Repository } from "./restic.ts";
import type { ArtifactStore, ReadBack, StoredArtifact, TreeSource } from "./types.ts";
import { passGate, type SourceGate } from "./gate.ts";
import { makeFifo, unblockFifoWriter, type PipeDir } from "../docker/pipe-dir.ts";

interface BackupSummary {
  snapshot_id: string;
  total_files_processed: number;
  files_unmodified: number;
  total_bytes_processed: number;
  data_added_packed: number;
}

/** Snapshot tags cannot hold commas (restic's tag list separator). */
const sourceTag = (service: string, name: string) => `composure-source=${service}/${name}`.replace(/,/g, "_");

export interface RepositoryTarget {
  repository: Repository;
  service: string;
  /** Sources the repository cannot take as they are (trees to dereference) go here instead. */
  fallback: ArtifactStore;
}

export function repositoryStore(target: RepositoryTarget): ArtifactStore {
  const { repository, service } = target;
  const tags = (name: string) => ["--host", repository.project, "--tag", sourceTag(service, name), "--group-by", "host,tags"];
  const artifactOf = (name: string, kind: "tree" | "stream", source: string, summary: BackupSummary): StoredArtifact => ({
    path: `${service}/${name}`,
    bytes: summary.total_bytes_processed,
    repository: { snapshot: summary.snapshot_id, source, kind, files: summary.total_files_processed, addedBytes: summary.data_added_packed },
  });
  return {
    incremental: true,
    async putTree(name: string, source: TreeSource, label: string): Promise<StoredArtifact> {
      if (source.dereference) {
        log.info(`${label}: restic keeps symlinks as links, and this source must be stored with what they point to: kept in an archive file`);
        return target.fallback.putTree(name, source, label);
      }
      const dir = source.hostDir ?? source.dir;
      const paths = source.entries ? source.entries.map((entry) => path.posix.join(dir, entry)) : [dir];
      const args = ["backup", "--json", ...tags(name), ...(source.relinked ? ["--ignore-ctime"] : []), ...resticExcludes(source.exclude ?? [], dir)];
      const started = performance.now();
      const progress = startProgress(label);
      const run = (argv: string[]) => (source.hostDir ? resticOnHostWithProgress(repository, argv, progress) : resticInHelperWithProgress(repository, source.helper, argv, progress));
      const backup = (gateArgs: string[]) => run([...args, ...gateArgs, "--", ...paths]);
      const gated = source.gate && source.pipe ? throughGate(source.gate, source.pipe, Boolean(source.hostDir), backup) : passGate(source.gate).then(() => backup([]));
      const stdout = await gated.finally(() => progress.stop());
      const summary = lastMessage<BackupSummary>(stdout, "summary");
      const seconds = (performance.now() - started) / 1000;
      log.info(`${label}: ${summary.total_files_processed} files (${summary.files_unmodified} unchanged, not read again), ${formatBytes(summary.total_bytes_processed)} -> ${formatBytes(summary.data_added_packed)} added to the repository in ${seconds.toFixed(1)} s`);
      return artifactOf(name, "tree", dir, summary);
    },

    async putStream(name: string, stream: Readable, label?: string): Promise<StoredArtifact> {
      const progress = label ? startProgress(label) : undefined;
      if (progress) stream.on("data", (chunk: Buffer) => progress.add(chunk.length));
      const file = `${service}/${name}`;
      const stdout = await restic(repository, ["backup", "--json", "--quiet", "--stdin", "--stdin-filename", file, ...tags(name)], stream).finally(() => progress?.stop());
      const summary = lastMessage<BackupSummary>(stdout, "summary");
      progress?.done(`${formatBytes(summary.data_added_packed)} added to the repository`);
      return artifactOf(name, "stream", `/${file}`, summary);
    },

    async discard(stored: StoredArtifact): Promise<void> {
      if (stored.repository) await restic(repository, ["forget", stored.repository.snapshot]);
      else await target.fallback.discard(stored);
    },
  };
}

/**
 * Runs `backup(gateArgs)` (a restic backup in the helper, or on the host) so that restic opens the
 * repository and takes its lock while the gate is closed, and reads the tree only once it opens.
 * The gate is an exclude file that is a FIFO in the helper's pipe folder (a host folder): restic
 * reads its exclude files after opening the repository and before it looks at any file, so it
 * waits there until the FIFO's writer closes it. When the gate fails (the stop failed), the writer hands restic an invalid
 * pattern instead: it stops without reading anything.
 */
async function throughGate(gate: SourceGate, pipe: PipeDir, onHost: boolean, backup: (gateArgs: string[]) => Promise<string>): Promise<string> {
  const name = `gate-${randomUUID()}`;
  const fifo = path.join(pipe.dir, name);
  await makeFifo(fifo);
  let ended = false;
  const writer = open(fifo, "w"); // resolves once restic opens the FIFO to read it
  const running = backup(["--exclude-file", onHost ? fifo : `/pipe/${name}`]).finally(() => {
    ended = true;
    unblockFifoWriter(fifo); // restic ended before it came to the gate (wrong password, say)
  });
  const handedOver = writer.then(async (handle) => {
    try {
      if (ended) return;
      gate.ready();
      await gate.opened.catch(() => handle.write("[\n"));
    } finally {
      await handle.close();
    }
  });
  try {
    return await running;
  } finally {
    await handedOver.catch(() => undefined);
    await rm(fifo, { force: true });
  }
}

/** A stream artifact's bytes, from `restic dump`. */
export function readFromRepository(repository: Repository, artifact: Artifact, ready: Promise<void>): ReadBack {
  const entry = artifact.repository!;
  const stream = new PassThrough({ highWaterMark: 1 << 20 });
  const done = ready.then(async () => {
    const dump = resticProcess(repository, ["dump", entry.snapshot, entry.source]).nothrow();
    (dump.stdout as Readable).pipe(stream);
    const result = await dump;
    if (result.exitCode !== 0) throw resticError(repository, "dump", result.exitCode ?? -1, result.stderr);
  });
  done.catch((error: Error) => stream.destroy(error));
  return { stream, done, source: { size: artifact.bytes } };
}

/** A tree snapshot's source directory as restic recorded it: what goes onto the restored root. */
export interface TreeRoot {
  uid: number;
  gid: number;
  mode: number;
  mtime: string;
}

interface LsNode extends TreeRoot {
  message_type?: string;
  struct_type?: string;
  name: string;
  type: string;
  path: string;
}

/** Go's os.FileMode bits for setuid, setgid and sticky, as the POSIX bits. */
function posixMode(mode: number): number {
  const go = { setuid: 2 ** 23, setgid: 2 ** 22, sticky: 2 ** 20 };
  return (mode & 0o777) | (Math.floor(mode / go.setuid) % 2 ? 0o4000 : 0) | (Math.floor(mode / go.setgid) % 2 ? 0o2000 : 0) | (Math.floor(mode / go.sticky) % 2 ? 0o1000 : 0);
}

/**
 * Checks every entry of a tree snapshot before anything is written, as the archive engine's tar
 * inspector does (a name that is no plain name, a device file: refused), and returns the
 * source directory's own node (its owner, mode and mtime go onto the restored root).
 */
export async function checkTree(repository: Repository, entry: NonNullable<Artifact["repository"]>): Promise<TreeRoot | undefined> {
  const listing = resticProcess(repository, ["ls", "--json", entry.snapshot]).nothrow();
  let root: LsNode | undefined;
  let problem: string | undefined;
  for await (const line of createInterface({ input: listing.stdout as Readable })) {
    if (!line.startsWith("{") || problem) continue;
    const node = JSON.parse(line) as LsNode;
    if (node.struct_type !== "node") continue;
    if (node.path === entry.source) root = node;
    if (node.name === "" || node.name === "." || node.name === ".." || node.name.includes("/")) problem = `an entry named ${JSON.stringify(node.name)} at ${node.path}`;
    else if (node.type === "dev" || node.type === "chardev") problem = `the device file ${node.path} (device files are not restored)`;
  }
  const result = await listing;
  if (result.exitCode !== 0) throw resticError(repository, "ls", result.exitCode ?? -1, result.stderr);
  if (problem) throw new Error(`snapshot ${entry.snapshot.slice(0, 8)} holds ${problem}: refused, nothing was changed`);
  return root;
}

/** Restores a tree snapshot into `dir` of a helper that has the repository's helper binds. */
export async function extractFromRepository(repository: Repository, artifact: Artifact, root: TreeRoot | undefined, helper: Helper, dir: string, label: string): Promise<Extraction> {
  const entry = artifact.repository!;
  const started = performance.now();
  const progress = startProgress(label, artifact.bytes); // the size is known while restic still loads the index
  const stdout = await resticInHelperWithProgress(repository, helper, ["restore", "--json", "--no-lock", `${entry.snapshot}:${entry.source}`, "--target", dir], progress).finally(() => progress.stop());
  const summary = lastMessage<{ files_restored?: number; total_files: number; total_bytes: number }>(stdout, "summary");
  log.info(`${label}: ${summary.total_files} entries, ${formatBytes(summary.total_bytes)} restored from the repository in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  const rootEntry: TarEntry | undefined = root && { name: ".", type: "directory", size: 0, mode: posixMode(root.mode), uid: root.uid, gid: root.gid, mtime: Math.floor(Date.parse(root.mtime) / 1000), linkName: "" };
  return {
    summary: { entries: summary.total_files, files: summary.total_files, directories: 0, symlinks: 0, hardlinks: 0, dataBytes: summary.total_bytes, archiveBytes: 0 },
    timestamps: [], // restic restores directory and symlink times itself
    root: rootEntry,
  };
}

/** The snapshots of this project in the repository: id -> total bytes recorded at backup time. */
export async function projectSnapshots(repository: Repository): Promise<Map<string, { bytes: number; time: string }>> {
  const stdout = await restic(repository, ["snapshots", "--json", "--no-lock", "--host", repository.project]);
  const snapshots = JSON.parse(stdout || "[]") as { id: string; time: string; summary?: { total_bytes_processed?: number } }[];
  return new Map(snapshots.map((snapshot) => [snapshot.id, { bytes: snapshot.summary?.total_bytes_processed ?? -1, time: snapshot.time }]));
}

/** `restic check`; with `readShare` ("5%"), also reads back that share of the data and checks it. */
export async function checkRepository(repository: Repository, readShare?: string): Promise<void> {
  await restic(repository, ["check", ...(readShare ? [`--read-data-subset=${readShare}`] : [])]);
}

/** Forgets the snapshots, then lets restic prune the data only they used (under restic's exclusive lock). */
export async function forgetAndPrune(repository: Repository, snapshots: string[]): Promise<void> {
  await clearStaleLocks(repository);
  for (let at = 0; at < snapshots.length; at += 100) await restic(repository, ["forget", "--quiet", ...snapshots.slice(at, at + 100)]);
  await restic(repository, ["prune", "--quiet"]);
}

interface SnapshotIdentity {
  id: string;
  /** The id of the snapshot it is a copy of (restic gives a copy a new id and keeps the first here). */
  original?: string;
  tree: string;
}

async function snapshotIdentities(repository: Repository, ids: string[] = []): Promise<SnapshotIdentity[]> {
  return JSON.parse((await restic(repository, ["snapshots", "--json", "--no-lock", ...ids])) || "[]") as SnapshotIdentity[];
}

/**
 * Copies the snapshots `ids` of `from` into `target` (both on this host, one password file each),
 * making `target` with `from`'s chunker parameters when it does not exist, so that the same data
 * is cut into the same chunks and deduplicates. restic gives each copy a new id (or skips a
 * snapshot `target` already holds a copy of): returns each id's id in `target`.
 */
export async function copySnapshots(from: Repository, target: Repository, ids: string[]): Promise<Map<string, string>> {
  await checkVersion(target.binary);
  if (existsSync(path.join(target.path, "config"))) {
    await checkPassword(target);
    await clearStaleLocks(target);
  } else {
    await restic(target, ["init", "--copy-chunker-params"], undefined, from);
  }
  await restic(target, ["copy", "--quiet", ...ids], undefined, from);
  const copies = await snapshotIdentities(target);
  const identity = (snapshot: SnapshotIdentity) => snapshot.original ?? snapshot.id;
  const copied = new Map<string, string>();
  for (const snapshot of await snapshotIdentities(from, ids)) {
    const copy = copies.find((candidate) => identity(candidate) === identity(snapshot) && candidate.tree === snapshot.tree);
    if (!copy) throw new Error(`restic copy did not bring snapshot ${snapshot.id.slice(0, 8)} into the repository ${target.path}`);
    copied.set(snapshot.id, copy.id);
  }
  return copied;
}

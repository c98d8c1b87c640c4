// The seam between what a strategy captures and how it is kept. A strategy hands a store
// *sources*: a directory tree as a helper container sees it (a volume, a snapshot folder), or a
// named byte stream (a database dump). The store persists them and says what went into the
// manifest; reading back gives the same bytes (a tar stream of the tree, the stream itself).
// Engines: `archive` (store/archive.ts, one compressed file per source).
import type { Readable } from "node:stream";
import type { Artifact } from "../catalog/manifest.ts";
import type { Helper } from "../docker/helper.ts";
import type { PipeDir } from "../docker/pipe-dir.ts";
import type { Extraction } from "../archive/tar-transfer.ts";
import type { PathPattern } from "../config/path-patterns.ts";
import type { SourceGate } from "./gate.ts";

/** A directory of a helper container (with the FIFO folder of its session, when the engine is local). */
export interface TreeSource {
  helper: Helper;
  pipe: PipeDir | undefined;
  dir: string;
  /**
   * The same tree as a folder of this host, when composure may read it there (it runs as root
   * beside a local engine): an engine that reads trees itself (restic) does so on the host,
   * without a process started in the helper.
   */
  hostDir?: string;
  /** Names relative to dir (default everything in it). */
  entries?: string[];
  /** Store what symlinks point to instead of the links (VictoriaMetrics snapshots). */
  dereference?: boolean;
  /**
   * The files are hard links made anew each run (Cassandra snapshots): their ctime changes while
   * their content does not, so an engine that skips unchanged files judges by size, mtime and inode.
   */
  relinked?: boolean;
  /** Left out (exclude_paths, relative to dir): neither stored nor counted. */
  exclude?: PathPattern[];
  /** The size of the tar stream of the tree, measured beside the capture: progress lines show the share done. */
  size?: Promise<number | undefined>;
  /** Nothing of the tree is read before it opens (stop mode hands the tree over before the stop). */
  gate?: SourceGate;
}

/** The manifest fields the store fills in; the strategy adds `volume` and `facts`. */
export type StoredArtifact = Pick<Artifact, "path" | "bytes" | "sha256" | "compression" | "encryption" | "repository">;

/** Where one service's sources of one run go. */
export interface ArtifactStore {
  /**
   * True when the engine reuses what the previous run of a source stored, provided the source
   * sits at the same path: a strategy then keeps its paths from run to run (a snapshot tag, say).
   */
  readonly incremental: boolean;
  /** Stores the tree as artifact `name` (unique in the service, no suffix: the engine adds its own). */
  putTree(name: string, source: TreeSource, label: string): Promise<StoredArtifact>;
  /** Stores what the stream yields as artifact `name`; `label` names it in progress lines. */
  putStream(name: string, stream: Readable, label?: string): Promise<StoredArtifact>;
  /** Drops an artifact this store wrote that will not be used (its source turned out bad). */
  discard(stored: StoredArtifact): Promise<void>;
}

/** Writes a tree artifact into `dir` of the helper (every entry checked first). */
export type ExtractTree = (helper: Helper, pipe: PipeDir | undefined, dir: string) => Promise<Extraction>;

/** An artifact's content read back: consume `stream`, then await `done` (it rejects on a checksum or decoding error). */
export type { Decoded as ReadBack } from "../archive/files.ts";

// The archive engine: one compressed (optionally age-encrypted) file per source in the service's
// folder of the run, hashed while written. Readable with stock tar, zstd and age.
import { rm } from "node:fs/promises";
import path from "node:path";
import type { Readable } from "node:stream";
import { artifactFields, writeCompressed, type Compression } from "../archive/files.ts";
import { captureDirectory } from "../archive/tar-transfer.ts";
import { formatBytes, startProgress } from "../log.ts";
import { pathMatcher } from "../config/path-patterns.ts";
import type { ArtifactStore, StoredArtifact, TreeSource } from "./types.ts";
import { passGate } from "./gate.ts";

export interface ArchiveTarget {
  /** The run's folder: artifact paths are relative to it. */
  runDir: string;
  /** The service's folder inside the run (made by whoever made the store). */
  dir: string;
  compression: Compression;
}

export function archiveStore(target: ArchiveTarget): ArtifactStore {
  return {
    incremental: false,
    async putTree(name: string, source: TreeSource, label: string): Promise<StoredArtifact> {
      await passGate(source.gate);
      const file = path.join(target.dir, `${name}.tar.zst`);
      const stored = await captureDirectory(source.helper, source.pipe, source.dir, file, target.compression, label, {
        entries: source.entries,
        dereference: source.dereference,
        exclude: source.exclude?.length ? pathMatcher(source.exclude) : undefined,
        size: source.size,
      });
      return artifactFields(target.runDir, stored);
    },
    async putStream(name: string, stream: Readable, label?: string): Promise<StoredArtifact> {
      const progress = label ? startProgress(label) : undefined;
      try {
        const stored = await writeCompressed(stream, path.join(target.dir, `${name}.zst`), target.compression, progress);
        progress?.done(`${formatBytes(stored.bytes)} stored`);
        return artifactFields(target.runDir, stored);
      } finally {
        progress?.stop();
      }
    },
    async discard(stored: StoredArtifact): Promise<void> {
      await rm(path.join(target.runDir, stored.path), { force: true });
    },
  };
}

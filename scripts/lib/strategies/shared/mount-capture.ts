// Capturing a service's mounts as tree archives through one read-only helper: the volume
// strategy's capture, also used by strategies that copy files beside their own snapshot (TSDBs,
// Redis). Small files are prefetched ahead of tar, and tree facts are read alongside it.
import { statSync } from "node:fs";
import type { Artifact } from "../../catalog/manifest.ts";
import type { SelectedMount } from "../../compose/mounts.ts";
import { withHelper, type Helper, type HelperSession } from "../../docker/helper.ts";
import type { PipeDir } from "../../docker/pipe-dir.ts";
import { isLocalEngine } from "../../docker/engine.ts";
import { inspectVolume, type VolumeSpec } from "../../docker/volumes.ts";
import { prefetchSmallFiles } from "./prefetch.ts";
import type { VolumeFacts } from "./service-data.ts";
import { measureTree } from "./tree-facts.ts";
import type { ArtifactStore } from "../../store/types.ts";
import type { SourceGate } from "../../store/gate.ts";
import { parsePathPatterns } from "../../config/path-patterns.ts";

export interface CaptureMountOptions {
  /** The service keeps writing meanwhile (hot mode): the facts may not match the stored tree exactly. */
  live?: boolean;
  /** A helper that has mountBinds(mounts), maybe still starting (stop mode begins the capture meanwhile). */
  session?: HelperSession;
  /** exclude_paths: left out of every mount, recorded in the facts (a restore keeps the live ones). */
  excludePaths?: string[];
  /** secret_paths: stored, and recorded in the facts (a restore keeps the live ones unless asked). */
  secretPaths?: string[];
  /** Stop mode: the capture begins before the stop and reads nothing before this opens. */
  gate?: SourceGate;
}

/**
 * Stores each mount as a tree; returns the artifacts with the volume facts restore needs and
 * the tree facts restore drills compare with (read alongside the capture: no added downtime).
 */
export async function captureMounts(helperImage: string, project: string, mounts: SelectedMount[], store: ArtifactStore, options: CaptureMountOptions = {}): Promise<Artifact[]> {
  if (options.session) return storeMounts(options.session.helper, options.session.pipe, mounts, store, options);
  return withHelper(helperImage, project, mountBinds(mounts), (helper, pipe) => storeMounts(helper, pipe, mounts, store, options));
}

/** captureMounts with a helper that has mountBinds(mounts). */
async function storeMounts(helper: Helper, pipe: PipeDir | undefined, mounts: SelectedMount[], store: ArtifactStore, options: CaptureMountOptions): Promise<Artifact[]> {
  const artifacts: Artifact[] = [];
  const exclude = parsePathPatterns(options.excludePaths ?? []);
  const { gate } = options;
  const opened = gate?.opened ?? Promise.resolve();
  // Warming the page cache helps a full read; an incremental store reads only the changed files.
  if (!store.incremental) opened.then(() => prefetchSmallFiles(helper, mounts.map((_, index) => mountDir(index))), () => undefined);
  for (const [index, selected] of mounts.entries()) {
    // Read alongside the capture; their stream size gives its progress line a share done.
    const measured = opened.then(() => measureTree(helper, mountDir(index), exclude));
    measured.catch(() => undefined); // awaited below, after the capture
    const size = measured.then((tree) => tree.streamBytes, () => undefined);
    const spec = selected.mount.type === "volume" ? await inspectVolume(selected.mount.source) : undefined;
    const stored = await store.putTree(selected.archiveName, { helper, pipe, dir: mountDir(index), hostDir: hostDirOf(selected, spec), exclude, size, gate }, selected.archiveName);
    artifacts.push({ ...stored, volume: volumeFacts(selected, spec), facts: { ...(await measured).facts, ...pathFacts(options) } });
  }
  return artifacts;
}

/** What a restore must know of the capture besides the tree: it was live, paths left out, secret paths. */
function pathFacts({ live, excludePaths, secretPaths }: CaptureMountOptions): Record<string, unknown> {
  return { ...(live ? { live } : {}), ...(excludePaths?.length ? { excludePaths } : {}), ...(secretPaths?.length ? { secretPaths } : {}) };
}

/** Where a helper sees mount number `index`. */
export const mountDir = (index: number) => `/v/${index}`;

/** The mounts read-only at mountDir(index) of a helper. */
export const mountBinds = (mounts: SelectedMount[]) => mounts.map((selected, index) => `${selected.mount.source}:${mountDir(index)}:ro`);

/**
 * The mount as a folder of this host, when composure may read it there: as root beside a local
 * engine, a bind mount's folder or a plain local volume's mountpoint (one with driver options,
 * NFS say, is mounted there only while a container uses it).
 */
function hostDirOf({ mount }: SelectedMount, spec: VolumeSpec | undefined): string | undefined {
  if (process.getuid?.() !== 0 || !isLocalEngine()) return undefined;
  const dir = mount.type === "bind" ? mount.source : spec?.driver === "local" && Object.keys(spec.options).length === 0 ? spec.mountpoint : undefined;
  if (!dir || /[*?[\]\\]/.test(dir)) return undefined; // restic's exclude patterns start with the folder: no glob characters in it
  return statSync(dir, { throwIfNoEntry: false })?.isDirectory() ? dir : undefined;
}

function volumeFacts(selected: SelectedMount, spec: VolumeSpec | undefined): VolumeFacts {
  const { mount, archiveName, sharedWith } = selected;
  const destination = mount.destination || undefined;
  if (mount.type === "bind") return { name: mount.source, kind: "bind", composeName: archiveName, sharedWith, destination };
  const composeProject = spec?.labels["com.docker.compose.project"];
  return {
    name: mount.source,
    kind: "volume",
    composeName: spec?.labels["com.docker.compose.volume"] ?? archiveName,
    driver: spec?.driver,
    labels: spec?.labels,
    external: !composeProject,
    sharedWith,
    destination,
  };
}

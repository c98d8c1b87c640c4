// Capturing a service's mounts as tree archives through one read-only helper: the volume
// strategy's capture, also used by strategies that copy files beside their own snapshot (TSDBs,
// Redis). Small files are prefetched ahead of tar, and tree facts are read alongside it.
import path from "node:path";
import { artifactFields } from "../../archive/files.ts";
import { captureDirectory } from "../../archive/tar-transfer.ts";
import type { Artifact } from "../../catalog/manifest.ts";
import type { SelectedMount } from "../../compose/mounts.ts";
import { withHelper, type Helper, type HelperSession } from "../../docker/helper.ts";
import type { PipeDir } from "../../docker/pipe-dir.ts";
import { inspectVolume } from "../../docker/volumes.ts";
import { prefetchSmallFiles } from "./prefetch.ts";
import type { VolumeFacts } from "./service-data.ts";
import { treeFacts } from "./tree-facts.ts";

/**
 * Archives each mount into `dir`; returns the artifacts with the volume facts restore needs and
 * the tree facts restore drills compare with (read alongside tar: no added downtime). `live`:
 * the service keeps writing meanwhile (hot mode), so the facts may not match the archive exactly.
 */
export async function captureMounts(ctx: CaptureSettings, project: string, mounts: SelectedMount[], dir: string, runDir: string, live = false, session?: HelperSession): Promise<Artifact[]> {
  if (session) return archiveMounts(ctx, session.helper, session.pipe, mounts, dir, runDir, live);
  return withHelper(ctx.helperImage, project, mountBinds(mounts), (helper, pipe) => archiveMounts(ctx, helper, pipe, mounts, dir, runDir, live));
}

type CaptureSettings = { helperImage: string; config: { compression: { level: number } } };

/** captureMounts with a helper that has mountBinds(mounts). */
async function archiveMounts(ctx: CaptureSettings, helper: Helper, pipe: PipeDir | undefined, mounts: SelectedMount[], dir: string, runDir: string, live: boolean): Promise<Artifact[]> {
  const artifacts: Artifact[] = [];
  prefetchSmallFiles(helper, mounts.map((_, index) => mountDir(index)));
  for (const [index, selected] of mounts.entries()) {
    const file = path.join(dir, `${selected.archiveName}.tar.zst`);
    const facts = treeFacts(helper, mountDir(index));
    facts.catch(() => undefined); // awaited below, after the capture
    const stored = await captureDirectory(helper, pipe, mountDir(index), file, ctx.config.compression.level, `${selected.archiveName}`);
    artifacts.push({ ...artifactFields(runDir, stored), volume: await volumeFacts(selected), facts: { ...(await facts), ...(live ? { live } : {}) } });
  }
  return artifacts;
}

/** Where a helper sees mount number `index`. */
export const mountDir = (index: number) => `/v/${index}`;

/** The mounts read-only at mountDir(index) of a helper. */
export const mountBinds = (mounts: SelectedMount[]) => mounts.map((selected, index) => `${selected.mount.source}:${mountDir(index)}:ro`);

async function volumeFacts(selected: SelectedMount): Promise<VolumeFacts> {
  const { mount, archiveName, sharedWith } = selected;
  const destination = mount.destination || undefined;
  if (mount.type === "bind") return { name: mount.source, kind: "bind", composeName: archiveName, sharedWith, destination };
  const spec = await inspectVolume(mount.source);
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

// Which mounts a service backs up. Named volumes: all, or those listed in `volumes`. Bind mounts:
// only when opted in (`bind_mounts: true`, or listed in `volumes` by container path). A volume
// shared by several services is backed up once, with the first of them (by name) that is included.
import type { ServiceSettings } from "../config/schema.ts";
import type { MountInfo } from "../docker/containers.ts";
import type { ProjectInfo, ServiceInfo } from "./discover.ts";

export interface SelectedMount {
  mount: MountInfo;
  /** File-safe name of the archive in the run: the compose volume name, or bind-<path>. */
  archiveName: string;
  sharedWith: string[];
}

export interface SkippedMount {
  mount: MountInfo;
  reason: string;
}

export function mountsOf(service: ServiceInfo): MountInfo[] {
  const seen = new Map<string, MountInfo>();
  for (const container of service.containers) {
    for (const mount of container.mounts) if (!seen.has(mount.source)) seen.set(mount.source, mount);
  }
  return [...seen.values()];
}

export function archiveNameOf(mount: MountInfo, project: string): string {
  if (mount.type === "bind") return `bind${mount.destination.replace(/[^A-Za-z0-9._-]+/g, "_")}`;
  return mount.source.startsWith(`${project}_`) ? mount.source.slice(project.length + 1) : mount.source;
}

const isAnonymous = (mount: MountInfo) => mount.type === "volume" && /^[0-9a-f]{64}$/.test(mount.source);

function listed(mount: MountInfo, archiveName: string, list: string[]): boolean {
  return list.some((item) => [mount.source, mount.destination, archiveName].includes(item));
}

export function selectMounts(
  project: ProjectInfo,
  service: ServiceInfo,
  settings: ServiceSettings,
  isIncluded: (serviceName: string) => boolean,
): { selected: SelectedMount[]; skipped: SkippedMount[] } {
  const selected: SelectedMount[] = [];
  const skipped: SkippedMount[] = [];
  for (const mount of mountsOf(service)) {
    const archiveName = archiveNameOf(mount, project.name);
    const explicitly = settings.volumes ? listed(mount, archiveName, settings.volumes) : false;
    const users = project.services.filter((other) => mountsOf(other).some((candidate) => candidate.source === mount.source)).map((other) => other.name);
    const owner = users.find(isIncluded);
    if (settings.volumes && !explicitly) skipped.push({ mount, reason: "not listed in composure.volumes" });
    else if (mount.type === "bind" && !explicitly && !settings.bind_mounts) skipped.push({ mount, reason: "bind mount (opt in with composure.bind_mounts=true)" });
    else if (isAnonymous(mount) && !explicitly) skipped.push({ mount, reason: "anonymous volume" });
    else if (owner !== service.name) skipped.push({ mount, reason: `shared: backed up with service ${owner}` });
    else selected.push({ mount, archiveName, sharedWith: users.filter((name) => name !== service.name) });
  }
  return { selected, skipped };
}

// Where a hot-snapshot strategy finds a service's data: the running container to talk to, the
// mount that holds a path of the container (a data directory, a snapshot), and the helper-side
// paths of it. Shared by the prometheus, victoriametrics and redis strategies.
import path from "node:path";
import type { Artifact } from "../../catalog/manifest.ts";
import type { ServiceInfo } from "../../compose/discover.ts";
import type { ContainerInfo, MountInfo } from "../../docker/containers.ts";
import { inspectVolume } from "../../docker/volumes.ts";

export type VolumeFacts = NonNullable<Artifact["volume"]>;

export interface DataLocation {
  mount: MountInfo;
  /** The path inside the mount, "." for its root (posix, never absolute, never "..") */
  subpath: string;
  /** The path in the service's container. */
  containerPath: string;
}

/** The service's first running container, or undefined. */
export function runningContainer(service: ServiceInfo | undefined): ContainerInfo | undefined {
  return service?.containers.find((container) => container.running);
}

/** The service's first running container; fails with what to do when there is none. */
export function requireRunningContainer(service: ServiceInfo, what: string): ContainerInfo {
  const container = runningContainer(service);
  if (!container) {
    throw new Error(`service ${service.name} has no running container: ${what} needs the service up (docker compose up -d ${service.name}), or back it up with composure.strategy=volume`);
  }
  return container;
}

/** The mount of `mounts` holding `containerPath` (the deepest one when mounts nest). */
export function locateDataPath(containerPath: string, mounts: MountInfo[]): DataLocation | undefined {
  const target = path.posix.normalize(containerPath).replace(/\/+$/, "") || "/";
  let best: MountInfo | undefined;
  for (const mount of mounts) {
    const destination = path.posix.normalize(mount.destination).replace(/\/+$/, "") || "/";
    const inside = target === destination || target.startsWith(destination === "/" ? "/" : `${destination}/`);
    if (inside && (!best || destination.length > best.destination.replace(/\/+$/, "").length)) best = mount;
  }
  if (!best) return undefined;
  const subpath = path.posix.relative(best.destination, target) || ".";
  return { mount: best, subpath, containerPath: target };
}

/** Finds `containerPath` on a mount of `container`, or fails saying which volume to add. */
export function requireDataLocation(service: ServiceInfo, container: ContainerInfo, containerPath: string, option: string): DataLocation {
  const location = locateDataPath(containerPath, container.mounts);
  if (!location) {
    const mounted = container.mounts.map((mount) => mount.destination).join(", ") || "none";
    throw new Error(
      `the data directory ${containerPath} of service ${service.name} is not on a volume (mounted: ${mounted}): ` +
        `mount a volume at ${containerPath}, or set ${option} to where the data lives`,
    );
  }
  return location;
}

/** `subpath` of a mount seen at `root` in a helper ("/v", ".") -> "/v". */
export function helperPath(root: string, subpath: string, ...more: string[]): string {
  return path.posix.join(root, subpath, ...more);
}

/** What restore needs to recreate the volume on a fresh host. */
export async function volumeFactsOf(mount: MountInfo, project: string): Promise<VolumeFacts> {
  if (mount.type === "bind") return { name: mount.source, kind: "bind", composeName: `bind${mount.destination.replace(/[^A-Za-z0-9._-]+/g, "_")}` };
  const spec = await inspectVolume(mount.source);
  return {
    name: mount.source,
    kind: "volume",
    composeName: spec?.labels["com.docker.compose.volume"] ?? (mount.source.startsWith(`${project}_`) ? mount.source.slice(project.length + 1) : mount.source),
    driver: spec?.driver,
    labels: spec?.labels,
    external: !spec?.labels["com.docker.compose.project"],
  };
}

/** A file-safe archive name for a mount: the compose volume name. */
export function archiveBaseName(facts: VolumeFacts): string {
  return (facts.composeName ?? facts.name).replace(/[^A-Za-z0-9._-]+/g, "_");
}

/** Names composure puts into shell lines: only plain names, never anything a shell would read. */
export function assertPlainName(name: string, what: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name) || name.length > 200) throw new Error(`unexpected ${what} ${JSON.stringify(name)}: refusing to use it as a file name`);
  return name;
}

/** The repository of an image reference without registry, tag or digest: "quay.io/prometheus/prometheus:v2" -> "prometheus/prometheus". */
export function imageRepository(image: string): string {
  let reference = image.split("@")[0];
  const slash = reference.lastIndexOf("/");
  const colon = reference.lastIndexOf(":");
  if (colon > slash) reference = reference.slice(0, colon);
  const parts = reference.split("/");
  if (parts.length > 1 && (/[.:]/.test(parts[0]) || parts[0] === "localhost")) parts.shift();
  if (parts.length > 1 && parts[0] === "library") parts.shift();
  return parts.join("/").toLowerCase();
}

/** True when the image's repository ends with one of `names` (redis, bitnami/redis, composure-fixture/redis ...). */
export function imageNamed(image: string, names: string[]): boolean {
  const last = imageRepository(image).split("/").at(-1) ?? "";
  return names.includes(last);
}

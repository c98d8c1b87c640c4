// The cluster behind a service: its nodes (GET _nodes/settings), the container each node runs in
// (asked through `GET _nodes/_local` inside every candidate container), where the snapshot
// repository lives (a volume mounted under path.repo), and the checks that every master and
// data node lists that path in path.repo and mounts the SAME volume there. Each problem names
// the node, its service and the exact line to add to the compose file.
import path from "node:path";
import type { ProjectInfo, ServiceInfo } from "../../compose/discover.ts";
import type { ContainerInfo, MountInfo } from "../../docker/containers.ts";
import { call, curlClient, type EsClient } from "./http.ts";
import { detectElasticsearch, isWithin, normalisePath, type ElasticsearchOptions } from "./options.ts";

export interface NodeInfo {
  id: string;
  name: string;
  roles: string[];
  /** path.repo of the node, normalised (empty when it has none). */
  pathRepo: string[];
  ip?: string;
}

export interface Member {
  service: ServiceInfo;
  container: ContainerInfo;
}

export interface ClusterView {
  client: EsClient;
  /** The service's container the client talks through. */
  container: ContainerInfo;
  service: ServiceInfo;
  name: string;
  uuid: string;
  /** "opensearch" or "elasticsearch". */
  engine: string;
  version: string;
  nodes: NodeInfo[];
  /** Node id of the node in `container`. */
  localNode: string;
  /** Node id -> the service and container it runs in (only nodes composure could place). */
  members: Map<string, Member>;
}

interface RootInfo {
  cluster_name: string;
  cluster_uuid: string;
  version: { number: string; distribution?: string };
}

interface NodesSettings {
  nodes: Record<string, { name: string; roles?: string[]; ip?: string; host?: string; settings?: { path?: { repo?: string | string[] } } }>;
}

export function runningContainerOf(service: ServiceInfo): ContainerInfo {
  const container = service.containers.find((candidate) => candidate.running);
  if (!container) throw new Error(`no container of service ${service.name} is running (start it: docker compose up -d ${service.name})`);
  return container;
}

/** path.repo as the node reports it: a list, a single string, or "[a, b]". */
export function pathRepoOf(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  const items = Array.isArray(value) ? value : value.replace(/^\[|\]$/g, "").split(",");
  return items.map((item) => item.trim()).filter(Boolean).map((item) => (item.startsWith("/") ? normalisePath(item) : item));
}

async function localNodeId(client: EsClient): Promise<string> {
  const answer = await call<{ nodes?: Record<string, unknown> }>(client, "GET", "/_nodes/_local/_none?filter_path=nodes.*.name", undefined, 30_000);
  const id = Object.keys(answer.nodes ?? {})[0];
  if (!id) throw new Error(`${client.where} did not say which node it is (GET _nodes/_local)`);
  return id;
}

/**
 * Other services that may run nodes of the same cluster: those labelled with the same
 * `composure.elasticsearch.cluster`, and every service that looks like Elasticsearch/OpenSearch
 * (by image or composure.strategy); each candidate is asked which cluster and node it is.
 */
function candidateServices(project: ProjectInfo, service: ServiceInfo, options: ElasticsearchOptions): ServiceInfo[] {
  return project.services.filter((other) => {
    if (other.name === service.name) return true;
    if (other.labels["composure.exclude"] === "true") return false;
    if (options.cluster && other.labels["composure.elasticsearch.cluster"] === options.cluster) return true;
    const strategy = other.labels["composure.strategy"];
    return strategy === "elasticsearch" || (!strategy && detectElasticsearch(other));
  });
}

export async function openCluster(project: ProjectInfo, service: ServiceInfo, options: ElasticsearchOptions): Promise<ClusterView> {
  const container = runningContainerOf(service);
  const client = curlClient(container, options);
  const [root, settings, localNode] = await Promise.all([
    call<RootInfo>(client, "GET", "/", undefined, 30_000),
    call<NodesSettings>(client, "GET", "/_nodes/settings?filter_path=nodes.*.name,nodes.*.roles,nodes.*.ip,nodes.*.settings.path.repo", undefined, 30_000),
    localNodeId(client),
  ]);
  const nodes: NodeInfo[] = Object.entries(settings.nodes ?? {})
    .map(([id, node]) => ({ id, name: node.name, roles: node.roles ?? [], pathRepo: pathRepoOf(node.settings?.path?.repo), ip: node.ip }))
    .sort((a, b) => a.name.localeCompare(b.name));
  const members = new Map<string, Member>([[localNode, { service, container }]]);
  const others = candidateServices(project, service, options).flatMap((candidate) => candidate.containers.filter((other) => other.running && other.id !== container.id).map((other) => ({ candidate, other })));
  const placed = await Promise.all(
    others.map(async ({ candidate, other }) => {
      try {
        const otherClient = curlClient(other, options);
        const [info, id] = await Promise.all([call<RootInfo>(otherClient, "GET", "/", undefined, 15_000), localNodeId(otherClient)]);
        return info.cluster_uuid === root.cluster_uuid ? { id, member: { service: candidate, container: other } } : undefined;
      } catch {
        return undefined; // not a node composure can ask (no curl, other port, not started): it stays unplaced
      }
    }),
  );
  for (const entry of placed) if (entry && !members.has(entry.id)) members.set(entry.id, entry.member);
  return {
    client,
    container,
    service,
    name: root.cluster_name,
    uuid: root.cluster_uuid,
    engine: root.version.distribution === "opensearch" ? "opensearch" : "elasticsearch",
    version: root.version.number,
    nodes,
    localNode,
    members,
  };
}

/** Where the repository lives: a mount of the service's container, and the directory under it. */
export interface RepositoryPlace {
  mount: MountInfo;
  /** repository_path: the directory (inside the containers) composure works in. */
  root: string;
  /** `root` relative to the mount's destination ("" when the same). */
  subpath: string;
  /** The fs repository's location: `<root>/composure`. */
  location: string;
  /** Compose name of the volume, for messages and compose lines. */
  displayName: string;
}

export const repositoryDirName = "composure";

function mountCovering(container: ContainerInfo, directory: string): MountInfo | undefined {
  return container.mounts.filter((mount) => isWithin(directory, mount.destination)).sort((a, b) => b.destination.length - a.destination.length)[0];
}

function composeNameOf(mount: MountInfo, project: string): string {
  if (mount.type === "bind") return mount.source;
  return mount.source.startsWith(`${project}_`) ? mount.source.slice(project.length + 1) : mount.source;
}

function describeMounts(container: ContainerInfo, project: string): string {
  return container.mounts.map((mount) => `${composeNameOf(mount, project)} at ${mount.destination}`).join(", ") || "no volumes";
}

const nodeLabel = (node: NodeInfo, member?: Member) => `node ${node.name}${member ? ` (service ${member.service.name}, container ${member.container.name})` : ""}`;

/**
 * Finds the repository's volume and directory from the options and path.repo: on the service's
 * own node first, else on another node of the cluster (the own node's missing setting or mount
 * is then reported by checkCluster, with every other problem).
 */
export function findRepositoryPlace(view: ClusterView, project: ProjectInfo, options: ElasticsearchOptions): RepositoryPlace {
  const own = view.nodes.find((candidate) => candidate.id === view.localNode) ?? { id: view.localNode, name: view.localNode, roles: [], pathRepo: [] };
  let firstError: unknown;
  const tries: [NodeInfo, Member][] = [[own, { service: view.service, container: view.container }]];
  for (const node of view.nodes) {
    const member = view.members.get(node.id);
    if (member && node.id !== view.localNode) tries.push([node, member]);
  }
  for (const [node, member] of tries) {
    try {
      return placeOn(node, member, project, options);
    } catch (error) {
      firstError ??= error;
    }
  }
  throw firstError;
}

function placeOn(node: NodeInfo, member: Member, project: ProjectInfo, options: ElasticsearchOptions): RepositoryPlace {
  const pathRepo = node.pathRepo;
  const label = nodeLabel(node, member);
  const service = member.service.name;
  const container = member.container;
  let mount: MountInfo | undefined;
  let root = options.repository_path;
  if (options.repository_volume) {
    const wanted = options.repository_volume;
    mount = container.mounts.find((candidate) => candidate.source === wanted || candidate.source === `${project.name}_${wanted}` || composeNameOf(candidate, project.name) === wanted);
    if (!mount) throw new Error(`service ${service} does not mount the volume ${wanted} named by composure.elasticsearch.repository_volume (it mounts ${describeMounts(container, project.name)})`);
    if (root && !isWithin(root, mount.destination)) throw new Error(`repository_path ${root} is not inside the volume ${wanted}, which service ${service} mounts at ${mount.destination}`);
    root ??= pathRepo.find((entry) => entry.startsWith("/") && isWithin(entry, mount!.destination)) ?? (pathRepo.some((entry) => isWithin(mount!.destination, entry)) ? mount.destination : undefined);
    if (!root) {
      throw new Error(`the volume ${wanted} is mounted at ${mount.destination} in service ${service}, which is not under path.repo of ${label} (${pathRepo.length ? pathRepo.join(", ") : "no path.repo"}): add path.repo=${mount.destination} to the environment of service ${service} (and of every other node) in the compose file`);
    }
  } else if (root) {
    mount = mountCovering(container, root);
    if (!mount) throw new Error(`no volume is mounted at ${root} (repository_path) in service ${service}: mount the shared repository volume there, e.g. "- snapshots:${root}" under volumes of every node's service in the compose file`);
  } else {
    if (pathRepo.length === 0) {
      throw new Error(`${label} has no path.repo setting: add path.repo=/snapshots to the environment of service ${service} in the compose file and mount a shared volume there ("- snapshots:/snapshots" under its volumes), on every node of the cluster`);
    }
    for (const entry of pathRepo) {
      const covering = entry.startsWith("/") ? mountCovering(container, entry) : undefined;
      if (covering) {
        mount = covering;
        root = entry;
        break;
      }
    }
    if (!mount || !root) {
      throw new Error(`path.repo of ${label} is ${pathRepo.join(", ")}, but no volume is mounted there: add "- snapshots:${pathRepo[0]}" to the volumes of service ${service} (and of every other node's service) in the compose file`);
    }
  }
  root = normalisePath(root);
  const subpath = path.posix.relative(mount.destination, root);
  return { mount, root, subpath, location: path.posix.join(root, repositoryDirName), displayName: composeNameOf(mount, project.name) };
}

/** Master and data nodes need the repository; coordinating-only and ingest-only nodes do not. */
export function needsRepository(node: NodeInfo): boolean {
  if (node.roles.length === 0) return true;
  return node.roles.some((role) => role === "master" || role === "cluster_manager" || role === "data" || role.startsWith("data_"));
}

/**
 * Every problem that keeps the cluster from using the repository at `place`, one line each:
 * path.repo missing on a node, a node composure cannot place in a container, a node container
 * without the shared volume at the same path.
 */
export function clusterProblems(view: ClusterView, place: RepositoryPlace, project: string): string[] {
  const problems: string[] = [];
  const volumeLine = place.mount.type === "bind" ? `"- ${place.mount.source}:${place.mount.destination}"` : `"- ${place.displayName}:${place.mount.destination}"`;
  for (const node of view.nodes.filter(needsRepository)) {
    const member = view.members.get(node.id);
    const label = nodeLabel(node, member);
    const where = member ? `service ${member.service.name}` : "its service";
    if (!node.pathRepo.some((entry) => isWithin(place.location, entry))) {
      const setting = node.pathRepo.length ? `path.repo=${[...node.pathRepo, place.root].join(",")}` : `path.repo=${place.root}`;
      problems.push(`${label} does not have ${place.root} in path.repo (${node.pathRepo.length ? `it has ${node.pathRepo.join(", ")}` : "it has no path.repo"}): set ${setting} in the environment of ${where} in the compose file`);
    }
    if (!member) {
      problems.push(`${label}${node.ip ? ` at ${node.ip}` : ""} runs in no container composure can match in project ${project}: give its service the label composure.elasticsearch.cluster=${view.service.labels["composure.elasticsearch.cluster"] ?? view.name} (as on service ${view.service.name}) and make sure curl in it reaches the API`);
      continue;
    }
    const mount = mountCovering(member.container, place.root);
    const sameVolume = mount && mount.source === place.mount.source && path.posix.relative(mount.destination, place.root) === place.subpath;
    if (!sameVolume) {
      const has = mount ? `it mounts ${composeNameOf(mount, project)} at ${mount.destination} instead` : `nothing is mounted at ${place.mount.destination}`;
      problems.push(`${label} does not mount the shared repository volume ${place.displayName} at ${place.mount.destination} (${has}): add ${volumeLine} to the volumes of service ${member.service.name} in the compose file`);
    }
  }
  return problems;
}

/** Checks the cluster and fails with every problem at once. */
export function checkCluster(view: ClusterView, place: RepositoryPlace, project: string): void {
  const problems = clusterProblems(view, place, project);
  if (problems.length === 1) throw new Error(`${problems[0]}; then recreate the container (docker compose up -d)`);
  if (problems.length > 1) throw new Error(`the cluster ${view.name} cannot use the snapshot repository ${place.location} (${problems.length} problems; fix them, then recreate the containers with docker compose up -d):\n${problems.map((line) => `  - ${line}`).join("\n")}`);
}

/** Services whose containers run nodes of this cluster, by name. */
export function clusterServices(view: ClusterView): string[] {
  return [...new Set([...view.members.values()].map((member) => member.service.name))].sort();
}

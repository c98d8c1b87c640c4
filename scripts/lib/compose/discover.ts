// Discovers Compose projects and their services through the labels Compose v1 and v2 both set
// (never through container names, which differ: proj_svc_1 vs proj-svc-1).
import { readFileSync } from "node:fs";
import path from "node:path";
import { parse as parseYaml } from "yaml";
import { inspectContainer, listContainerIds, type ContainerInfo } from "../docker/containers.ts";

export const projectLabel = "com.docker.compose.project";
export const serviceLabel = "com.docker.compose.service";
export const volumeLabel = "com.docker.compose.volume";
const numberLabel = "com.docker.compose.container-number";
const dependsOnLabel = "com.docker.compose.depends_on";
const configFilesLabel = "com.docker.compose.project.config_files";
const workingDirLabel = "com.docker.compose.project.working_dir";

export interface ServiceInfo {
  project: string;
  name: string;
  image: string;
  labels: Record<string, string>;
  /** Every container of the service: scaled replicas and stopped ones too, by number. */
  containers: ContainerInfo[];
  /** Services this one needs running: depends_on, network_mode service:x, links. */
  dependsOn: string[];
}

export interface ProjectInfo {
  name: string;
  services: ServiceInfo[];
}

export async function listProjects(): Promise<string[]> {
  const containers = await Promise.all((await listContainerIds([projectLabel])).map(inspectContainer));
  return [...new Set(containers.map((container) => container.labels[projectLabel]))].sort();
}

export async function discoverProject(project: string): Promise<ProjectInfo> {
  const ids = await listContainerIds([`${projectLabel}=${project}`]);
  const containers = (await Promise.all(ids.map(inspectContainer))).filter(
    (container) => !container.labels["composure.helper"] && container.labels[serviceLabel],
  );
  const declared = declaredDependencies(containers);
  const byService = new Map<string, ContainerInfo[]>();
  for (const container of containers) {
    const name = container.labels[serviceLabel];
    byService.set(name, [...(byService.get(name) ?? []), container]);
  }
  const services = [...byService.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, members]) => {
      members.sort((a, b) => Number(a.labels[numberLabel] ?? 0) - Number(b.labels[numberLabel] ?? 0));
      return {
        project,
        name,
        image: members[0].image,
        labels: members[0].labels,
        containers: members,
        dependsOn: dependenciesOf(members, containers, declared.get(name) ?? []),
      };
    });
  return { name: project, services };
}

function dependenciesOf(members: ContainerInfo[], all: ContainerInfo[], declared: string[]): string[] {
  const serviceOf = (predicate: (container: ContainerInfo) => boolean) =>
    all.find(predicate)?.labels[serviceLabel];
  const found = new Set<string>(declared);
  for (const container of members) {
    for (const entry of (container.labels[dependsOnLabel] ?? "").split(",")) {
      const name = entry.split(":")[0].trim();
      if (name) found.add(name);
    }
    if (container.networkMode.startsWith("container:")) {
      const target = container.networkMode.slice("container:".length);
      const name = serviceOf((other) => other.id.startsWith(target) || other.name === target);
      if (name) found.add(name);
    }
    for (const link of container.links) {
      const name = serviceOf((other) => other.name === link);
      if (name) found.add(name);
    }
  }
  found.delete(members[0].labels[serviceLabel]);
  return [...found].sort();
}

/**
 * `depends_on` of each service as the project's compose files declare it. Compose v2 also records
 * it in a label; Compose v1 does not, so read the files its containers name, when this host has
 * them (a remote engine's project files are elsewhere: then the labels are all there is).
 */
function declaredDependencies(containers: ContainerInfo[]): Map<string, string[]> {
  const declared = new Map<string, string[]>();
  const labels = containers.find((container) => container.labels[configFilesLabel])?.labels;
  if (!labels || containers.some((container) => container.labels[dependsOnLabel] !== undefined)) return declared;
  for (const file of labels[configFilesLabel].split(",").filter(Boolean)) {
    try {
      const document = parseYaml(readFileSync(path.resolve(labels[workingDirLabel] ?? "", file), "utf8")) as { services?: Record<string, { depends_on?: unknown }> };
      for (const [name, service] of Object.entries(document?.services ?? {})) {
        const dependsOn = service?.depends_on;
        const names = Array.isArray(dependsOn) ? dependsOn.map(String) : dependsOn && typeof dependsOn === "object" ? Object.keys(dependsOn) : [];
        declared.set(name, [...new Set([...(declared.get(name) ?? []), ...names])]);
      }
    } catch {
      // Unreadable or not YAML: the labels are all there is.
    }
  }
  return declared;
}

/**
 * The services that must stop before `names` stop (and start after them): every service that
 * depends on one of them, transitively. Ordered so that a dependent comes before what it needs.
 */
export function dependentsFirst(project: ProjectInfo, names: string[]): string[] {
  const dependents = (name: string) => project.services.filter((service) => service.dependsOn.includes(name)).map((service) => service.name);
  const ordered: string[] = [];
  const visit = (name: string, path: Set<string>) => {
    if (ordered.includes(name) || path.has(name)) return;
    path.add(name);
    for (const dependent of dependents(name)) visit(dependent, path);
    path.delete(name);
    ordered.push(name);
  };
  for (const name of names) visit(name, new Set());
  return ordered;
}

/**
 * `names` in the order a restore brings them back: each after the services it needs, directly or
 * through services not in `names` (the database before the app that uses it), so a service that
 * starts again after its restore finds its dependencies restored already. Among services free to
 * go, name order; a dependency cycle is broken at its first name. Names the project has no
 * containers for (a fresh host before `up`) have no known dependencies: last, in name order.
 */
export function dependenciesFirst(project: ProjectInfo, names: string[]): string[] {
  const byName = (a: string, b: string) => a.localeCompare(b);
  const known = new Set(project.services.map((service) => service.name));
  const present = [...new Set(names)].filter((name) => known.has(name)).sort(byName);
  const absent = [...new Set(names)].filter((name) => !known.has(name)).sort(byName);
  const needs = new Map(present.map((name) => [name, [...requirementsOf(project, name)].filter((other) => present.includes(other))]));
  const ordered: string[] = [];
  while (ordered.length < present.length) {
    const left = present.filter((name) => !ordered.includes(name));
    const ready = left.find((name) => needs.get(name)!.every((other) => ordered.includes(other)));
    ordered.push(ready ?? left[0]);
  }
  return [...ordered, ...absent];
}

/** Every service `name` needs, transitively; cycles end where they began. */
function requirementsOf(project: ProjectInfo, name: string): Set<string> {
  const found = new Set<string>();
  const visit = (current: string) => {
    for (const dependency of project.services.find((service) => service.name === current)?.dependsOn ?? []) {
      if (found.has(dependency)) continue;
      found.add(dependency);
      visit(dependency);
    }
  };
  visit(name);
  found.delete(name);
  return found;
}

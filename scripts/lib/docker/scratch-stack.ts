// Scratch stacks for restore drills: copies of a project's containers (same image, environment,
// command, labels, healthcheck) under a new compose project name, with new empty volumes, on an
// internal network of their own (no route out, no published ports). Bind mounts the backup did
// not capture (configuration files) are mounted read-only; everything is labelled with the drill
// and its owning process, so that whatever a killed drill leaves is removed by the next command.
import type Docker from "dockerode";
import { randomBytes } from "node:crypto";
import { projectLabel, serviceLabel, volumeLabel, type ProjectInfo, type ServiceInfo } from "../compose/discover.ts";
import { processIdentity, processIsGone } from "../process-identity.ts";
import { messageOf } from "../errors.ts";
import { log } from "../log.ts";
import { getEngine } from "./engine.ts";
import { removeLeftoverHelpers } from "./helper.ts";

export const drillLabel = "composure.drill";
const ownerLabel = "composure.drill.owner";
/** The project a drill copies: `docker ps --filter label=composure.drill.source=shop` finds its drills. */
const sourceLabel = "composure.drill.source";

export interface ScratchStack {
  /** The scratch compose project name, also the network's name. */
  project: string;
  /** The scratch containers (created, not started), in start order. */
  containers: { id: string; service: string }[];
  remove(): Promise<void>;
}

/** Which production containers' settings a drill copies, and the bind sources the backup holds. */
export interface ScratchRequest {
  source: ProjectInfo;
  services: ServiceInfo[];
  capturedBinds: Set<string>;
}

export async function createScratchStack(request: ScratchRequest): Promise<ScratchStack> {
  const project = `composure-drill-${Date.now().toString(36)}${randomBytes(3).toString("hex")}`;
  const labels = { [drillLabel]: project, [ownerLabel]: processIdentity(), [sourceLabel]: request.source.name };
  const engine = getEngine();
  const stack: ScratchStack = { project, containers: [], remove: () => removeDrill(project) };
  try {
    await engine.createNetwork({ Name: project, Internal: true, Labels: labels, CheckDuplicate: true });
    const copies = new Map<string, string>(); // production container id -> scratch container id
    for (const info of await inspectInStartOrder(request.services)) {
      const id = await copyContainer(engine, info, { project, labels, copies, capturedBinds: request.capturedBinds, sourceProject: request.source.name });
      copies.set(info.Id, id);
      stack.containers.push({ id, service: info.Config.Labels?.[serviceLabel] ?? "" });
    }
    return stack;
  } catch (error) {
    await stack.remove().catch((removeError: unknown) => log.warn(messageOf(removeError))); // the first error is the one to report
    throw error;
  }
}

/** Containers that share another's network namespace (network_mode: service:x) come after it. */
async function inspectInStartOrder(services: ServiceInfo[]): Promise<Docker.ContainerInspectInfo[]> {
  const infos = await Promise.all(services.flatMap((service) => service.containers.map((container) => getEngine().getContainer(container.id).inspect())));
  const joins = (info: Docker.ContainerInspectInfo) => (info.HostConfig.NetworkMode ?? "").startsWith("container:");
  return [...infos.filter((info) => !joins(info)), ...infos.filter(joins)];
}

interface CopyContext {
  project: string;
  labels: Record<string, string>;
  copies: Map<string, string>;
  capturedBinds: Set<string>;
  sourceProject: string;
}

async function copyContainer(engine: Docker, info: Docker.ContainerInspectInfo, ctx: CopyContext): Promise<string> {
  const service = info.Config.Labels?.[serviceLabel] ?? info.Name.replace(/^\//, "");
  const number = info.Config.Labels?.["com.docker.compose.container-number"] ?? "1";
  const network = networkModeOf(info, ctx);
  const container = await engine.createContainer({
    name: `${ctx.project}-${service}-${number}`,
    Image: info.Config.Image,
    Env: info.Config.Env,
    Cmd: info.Config.Cmd,
    Entrypoint: info.Config.Entrypoint,
    User: info.Config.User,
    WorkingDir: info.Config.WorkingDir,
    Healthcheck: info.Config.Healthcheck,
    StopSignal: (info.Config as { StopSignal?: string }).StopSignal,
    Hostname: info.Id.startsWith(info.Config.Hostname) ? undefined : info.Config.Hostname,
    Labels: { ...info.Config.Labels, ...ctx.labels, [projectLabel]: ctx.project },
    HostConfig: {
      Binds: await mountsOf(engine, info, ctx),
      Tmpfs: info.HostConfig.Tmpfs,
      ShmSize: info.HostConfig.ShmSize,
      Ulimits: info.HostConfig.Ulimits,
      CapAdd: info.HostConfig.CapAdd,
      CapDrop: info.HostConfig.CapDrop,
      Init: info.HostConfig.Init,
      NetworkMode: network,
    },
    NetworkingConfig: network === ctx.project ? { EndpointsConfig: { [ctx.project]: { Aliases: aliasesOf(info, service) } } } : undefined,
  });
  return container.id;
}

function networkModeOf(info: Docker.ContainerInspectInfo, ctx: CopyContext): string {
  const mode = info.HostConfig.NetworkMode ?? "default";
  if (mode === "none") return "none";
  if (mode === "host") throw new Error(`container ${info.Name.replace(/^\//, "")} uses the host's network: a drill copy of it could not be isolated (drills need services on their own networks)`);
  if (mode.startsWith("container:")) {
    const target = [...ctx.copies.entries()].find(([id]) => id.startsWith(mode.slice("container:".length)));
    if (!target) throw new Error(`container ${info.Name.replace(/^\//, "")} shares the network of a container outside the drill (${mode}): include its service in the backup`);
    return `container:${target[1]}`;
  }
  return ctx.project;
}

/** The names other services know it by: the service, the container name and its network aliases. */
function aliasesOf(info: Docker.ContainerInspectInfo, service: string): string[] {
  const aliases = Object.values(info.NetworkSettings.Networks ?? {}).flatMap((network) => network.Aliases ?? []);
  return [...new Set([service, info.Name.replace(/^\//, ""), ...aliases])];
}

/** Every volume becomes a new empty scratch volume; captured binds too; other binds are mounted read-only. */
async function mountsOf(engine: Docker, info: Docker.ContainerInspectInfo, ctx: CopyContext): Promise<string[]> {
  const binds: string[] = [];
  for (const mount of info.Mounts ?? []) {
    if (mount.Type === "bind" && !ctx.capturedBinds.has(mount.Source)) {
      binds.push(`${mount.Source}:${mount.Destination}:ro`);
      continue;
    }
    if (mount.Type !== "volume" && mount.Type !== "bind") continue;
    const name = scratchVolumeName(ctx, mount);
    await engine.createVolume({ Name: name, Labels: { ...ctx.labels, [projectLabel]: ctx.project, [volumeLabel]: name.slice(ctx.project.length + 1) } });
    binds.push(`${name}:${mount.Destination}${mount.RW ? "" : ":ro"}`);
  }
  return binds;
}

function scratchVolumeName(ctx: CopyContext, mount: Docker.ContainerInspectInfo["Mounts"][number]): string {
  if (mount.Type === "bind") return `${ctx.project}_bind${mount.Destination.replace(/[^A-Za-z0-9._-]+/g, "_")}`;
  const source = mount.Name ?? "";
  const name = source.startsWith(`${ctx.sourceProject}_`) ? source.slice(ctx.sourceProject.length + 1) : /^[0-9a-f]{64}$/.test(source) ? `anonymous-${source.slice(0, 12)}` : source;
  return `${ctx.project}_${name}`;
}

/**
 * Removes a drill's containers (with their helpers), volumes and network. Requests a killed drill
 * sent before it died (a create, a start) may still be under way in the engine: what is left is
 * removed again, a few times, and what stays is an error naming it.
 */
export async function removeDrill(project: string): Promise<void> {
  let left: string[] = [];
  for (let attempt = 1; attempt <= 5; attempt++) {
    left = await removeDrillOnce(project);
    if (left.length === 0) return;
    await new Promise((resolve) => setTimeout(resolve, 250 * attempt));
  }
  throw new Error(`the restore drill ${project} left ${left.join(", ")}: remove them by hand (docker rm -f / docker volume rm / docker network rm)`);
}

/** One pass over the drill's containers, volumes and network; returns what is still there. */
async function removeDrillOnce(project: string): Promise<string[]> {
  const engine = getEngine();
  const filters = { label: [`${drillLabel}=${project}`] };
  await removeLeftoverHelpers(project).catch(() => undefined);
  const containers = await engine.listContainers({ all: true, filters });
  await Promise.all(containers.map((summary) => engine.getContainer(summary.Id).remove({ force: true, v: true }).catch(() => undefined)));
  const { Volumes: volumes } = await engine.listVolumes({ filters });
  await Promise.all((volumes ?? []).map((volume) => engine.getVolume(volume.Name).remove().catch(() => undefined)));
  const networks = await engine.listNetworks({ filters });
  await Promise.all(networks.map((network) => engine.getNetwork(network.Id).remove().catch(() => undefined)));
  const [containersLeft, { Volumes: volumesLeft }, networksLeft] = await Promise.all([engine.listContainers({ all: true, filters }), engine.listVolumes({ filters }), engine.listNetworks({ filters })]);
  return [...containersLeft.map((entry) => `container ${entry.Names[0]?.replace(/^\//, "") ?? entry.Id.slice(0, 12)}`), ...(volumesLeft ?? []).map((entry) => `volume ${entry.Name}`), ...networksLeft.map((entry) => `network ${entry.Name}`)];
}

/** Drills whose owning process is gone (killed): removed, whatever command runs next. */
export async function removeAbandonedDrills(): Promise<string[]> {
  const engine = getEngine();
  const filters = { label: [drillLabel] };
  const [containers, { Volumes: volumes }, networks] = await Promise.all([engine.listContainers({ all: true, filters }), engine.listVolumes({ filters }), engine.listNetworks({ filters })]);
  const owners = new Map<string, string>();
  for (const labels of [...containers.map((entry) => entry.Labels), ...(volumes ?? []).map((entry) => entry.Labels), ...networks.map((entry) => entry.Labels)]) {
    if (labels?.[drillLabel]) owners.set(labels[drillLabel], labels[ownerLabel] ?? "");
  }
  const abandoned = [...owners.entries()].filter(([, owner]) => processIsGone(owner)).map(([project]) => project);
  const removed: string[] = [];
  for (const project of abandoned) {
    try {
      await removeDrill(project);
      removed.push(project);
    } catch (error) {
      log.warn(messageOf(error));
    }
  }
  return removed;
}

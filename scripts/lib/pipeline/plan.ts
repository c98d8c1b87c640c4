// What a backup of a project would do, service by service: the strategy (from composure.yml,
// labels or auto-detection), whether it stops, which mounts it takes and which it skips and why.
import { ConfigError, UsageError } from "../errors.ts";
import { discoverProject, type ProjectInfo, type ServiceInfo } from "../compose/discover.ts";
import { selectMounts, type SelectedMount, type SkippedMount } from "../compose/mounts.ts";
import { didYouMean } from "../config/did-you-mean.ts";
import { resolveServiceSettings } from "../config/load.ts";
import type { Config, ServiceSettings } from "../config/schema.ts";
import { describeIssues } from "../config/issues.ts";
import { detectStrategy, getStrategy, strategyKinds } from "../strategies/registry.ts";

export interface PlannedService {
  service: ServiceInfo;
  settings: ServiceSettings;
  strategy: string;
  /** How the strategy was chosen: "composure.yml", "label", "detected from image" or "default". */
  strategySource: string;
  excluded: boolean;
  mounts: SelectedMount[];
  skipped: SkippedMount[];
}

export interface ProjectPlan {
  project: ProjectInfo;
  services: PlannedService[];
}

export async function planProject(config: Config, projectName: string, only?: string): Promise<ProjectPlan> {
  const project = await discoverProject(projectName);
  if (project.services.length === 0) {
    throw new UsageError(`no containers of Compose project ${projectName} on this engine: start it (docker compose up -d) or check PROJECT=`);
  }
  const problems: string[] = [];
  const settingsOf = new Map<string, ServiceSettings>();
  for (const service of project.services) {
    const resolved = resolveServiceSettings(config, service, strategyKinds);
    problems.push(...resolved.problems);
    settingsOf.set(service.name, resolved.settings);
  }
  if (problems.length) throw new ConfigError(problems);
  const names = project.services.map((service) => service.name);
  if (only && !names.includes(only)) {
    throw new UsageError(`project ${projectName} has no service ${only}${didYouMean(only, names)} (services: ${names.join(", ")})`);
  }
  const isIncluded = (name: string) => !settingsOf.get(name)?.exclude;
  const services = project.services
    .filter((service) => !only || service.name === only)
    .map((service) => {
      const settings = settingsOf.get(service.name)!;
      const { selected, skipped } = selectMounts(project, service, settings, isIncluded);
      const fromFile = config.services[service.name]?.strategy;
      const detected = detectStrategy(service);
      const strategy = settings.strategy ?? detected;
      const strategySource = fromFile ? "composure.yml" : settings.strategy ? "label" : detected !== "volume" ? "detected from image" : "default";
      return { service, settings, strategy, strategySource, excluded: Boolean(settings.exclude), mounts: selected, skipped };
    });
  // Strategy options (composure.<kind>.* labels, services.<name>.options) are checked here, with
  // every other problem, so that a bad or missing option stops the run before anything is touched.
  for (const planned of services.filter((entry) => !entry.excluded)) {
    problems.push(...volumePathProblems(planned));
    const schema = getStrategy(planned.strategy).options;
    const parsed = schema.safeParse(planned.settings.options ?? {});
    if (!parsed.success) {
      problems.push(...describeIssues(parsed.error, schema, [`composure.${planned.strategy}`]).map((issue) => `service ${planned.service.name}: ${issue}`));
    }
  }
  if (problems.length) throw new ConfigError(problems);
  return { project, services };
}

/** exclude_paths and secret_paths shape what the volume strategy archives; other strategies archive their own dumps. */
function volumePathProblems(planned: PlannedService): string[] {
  const set = (["exclude_paths", "secret_paths"] as const).filter((key) => planned.settings[key]?.length);
  if (planned.strategy === "volume" || set.length === 0) return [];
  return [`service ${planned.service.name}: ${set.join(" and ")} apply to the volume strategy only, and this service uses ${planned.strategy} (${planned.strategySource}): remove ${set.length > 1 ? "them" : "it"}, or set strategy: volume`];
}

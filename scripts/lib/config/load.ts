// Loads composure.yml (optional) and the per-service settings from file and labels.
// Precedence, field by field: composure.yml > compose labels > image auto-detection > defaults.
// The file is the operator's word about this host; labels travel with the compose file.
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { parse as parseYaml } from "yaml";
import { ConfigError, messageOf } from "../errors.ts";
import { didYouMean } from "./did-you-mean.ts";
import { describeIssues } from "./issues.ts";
import { settingsFromLabels } from "./labels.ts";
import { configSchema, serviceSettingsSchema, type Config, type ServiceSettings } from "./schema.ts";

export interface LoadedConfig {
  config: Config;
  /** The file it came from, or undefined when composure runs on defaults. */
  file?: string;
}

/** Validates a parsed document; every problem is reported at once in one ConfigError. */
export function parseConfig(document: unknown, strategyKinds: readonly string[]): Config {
  const result = configSchema.safeParse(document ?? {});
  const problems = result.success ? [] : describeIssues(result.error, configSchema);
  const services = (document as { services?: Record<string, { strategy?: unknown }> } | null)?.services;
  if (services && typeof services === "object") {
    for (const [name, settings] of Object.entries(services)) {
      const strategy = settings?.strategy;
      if (typeof strategy === "string" && !strategyKinds.includes(strategy)) {
        problems.push(`at 'services.${name}.strategy': unknown strategy "${strategy}"${didYouMean(strategy, strategyKinds)}`);
      }
    }
  }
  if (problems.length > 0 || !result.success) throw new ConfigError(problems);
  return result.data;
}

export function loadConfig(env: NodeJS.ProcessEnv, strategyKinds: readonly string[]): LoadedConfig {
  const file = env.CONFIG || (existsSync("composure.yml") ? "composure.yml" : undefined);
  if (!file) return { config: parseConfig({}, strategyKinds) };
  if (!existsSync(file)) throw new ConfigError([`config file ${file} does not exist (set CONFIG= to an existing file, or unset it)`]);
  let document: unknown;
  try {
    document = parseYaml(readFileSync(file, "utf8"));
  } catch (error) {
    throw new ConfigError([`${file} is not valid YAML: ${messageOf(error)}`]);
  }
  const config = parseConfig(document, strategyKinds);
  // A relative destination is relative to the config file, not to wherever make was started.
  config.destination = path.resolve(path.dirname(file), config.destination);
  config.metrics.textfile_dir = path.resolve(path.dirname(file), config.metrics.textfile_dir);
  for (const key of ["path", "password_file"] as const) {
    const value = config.repository[key];
    if (value) config.repository[key] = path.resolve(path.dirname(file), value);
  }
  return { config, file };
}

function mergeSettings(fromLabels: ServiceSettings, fromFile: ServiceSettings | undefined): ServiceSettings {
  if (!fromFile) return fromLabels;
  return {
    ...fromLabels,
    ...fromFile,
    exec: fromLabels.exec || fromFile.exec ? { ...fromLabels.exec, ...fromFile.exec } : undefined,
    options: fromLabels.options || fromFile.options ? { ...fromLabels.options, ...fromFile.options } : undefined,
  };
}

/** One service's settings: its labels validated, then overridden by composure.yml. */
export function resolveServiceSettings(
  config: Config,
  service: { name: string; labels: Record<string, string> },
  strategyKinds: readonly string[],
): { settings: ServiceSettings; problems: string[] } {
  const { settings: raw, problems } = settingsFromLabels(service.labels, strategyKinds);
  const parsed = serviceSettingsSchema.safeParse(raw);
  if (!parsed.success) problems.push(...describeIssues(parsed.error, serviceSettingsSchema, ["labels"]));
  const fromLabels = parsed.success ? parsed.data : {};
  if (fromLabels.strategy && !strategyKinds.includes(fromLabels.strategy)) {
    problems.push(`at label 'composure.strategy': unknown strategy "${fromLabels.strategy}"${didYouMean(fromLabels.strategy, strategyKinds)}`);
  }
  const prefixed = problems.map((problem) => `service ${service.name}: ${problem}`);
  return { settings: mergeSettings(fromLabels, config.services[service.name]), problems: prefixed };
}

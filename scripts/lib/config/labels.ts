// Compose labels `composure.*` on a service, translated into the settings shape of composure.yml
// so one schema validates both. Label values are strings; each label says how to read its value.
import { didYouMean } from "./did-you-mean.ts";

type Reader = (value: string) => { value?: unknown; problem?: string };

const readBoolean: Reader = (value) => {
  const normalised = value.trim().toLowerCase();
  if (["true", "yes", "1", "on"].includes(normalised)) return { value: true };
  if (["false", "no", "0", "off"].includes(normalised)) return { value: false };
  return { problem: `expected true or false, got "${value}"` };
};

const readString: Reader = (value) => ({ value: value.trim() });

const readList: Reader = (value) => ({
  value: value
    .split(",")
    .map((item) => item.trim())
    .filter(Boolean),
});

const readNumber: Reader = (value) => {
  const number = Number(value);
  return Number.isFinite(number) && value.trim() !== "" ? { value: number } : { problem: `expected a number, got "${value}"` };
};

/** An argv array as JSON, so that no label value is ever handed to a shell implicitly. */
const readArgv: Reader = (value) => {
  try {
    const parsed: unknown = JSON.parse(value);
    if (Array.isArray(parsed) && parsed.every((item) => typeof item === "string")) return { value: parsed };
  } catch {
    // fall through to the explanation below
  }
  return { problem: `expected a JSON argv array such as ["sh", "-c", "your command"], got ${JSON.stringify(value)}` };
};

/** "false" (or no, off, 0) turns the check off; anything else is a share for the schema to read. */
const readShareOrOff: Reader = (value) => {
  const off = readBoolean(value);
  if (off.value === false) return off;
  const share = value.trim();
  return { value: /^\d+(\.\d+)?$/.test(share) ? Number(share) : share };
};

const labelReaders: Record<string, { path: string[]; read: Reader }> = {
  "composure.strategy": { path: ["strategy"], read: readString },
  "composure.stop": { path: ["stop"], read: readBoolean },
  "composure.exclude": { path: ["exclude"], read: readBoolean },
  "composure.tier": { path: ["tier"], read: readString },
  "composure.storage": { path: ["storage"], read: readString },
  "composure.volumes": { path: ["volumes"], read: readList },
  "composure.bind_mounts": { path: ["bind_mounts"], read: readBoolean },
  "composure.exclude_paths": { path: ["exclude_paths"], read: readList },
  "composure.secret_paths": { path: ["secret_paths"], read: readList },
  "composure.exec.pre": { path: ["exec", "pre"], read: readArgv },
  "composure.exec.post": { path: ["exec", "post"], read: readArgv },
  "composure.exec.timeout": { path: ["exec", "timeout"], read: readNumber },
  "composure.shrink_alert": { path: ["shrink_alert"], read: readShareOrOff },
};

export const knownLabels = Object.keys(labelReaders);

function setPath(target: Record<string, unknown>, path: string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) node = (node[key] ??= {}) as Record<string, unknown>;
  node[path[path.length - 1]] = value;
}

/**
 * Reads every `composure.*` label. Strategy options are `composure.<kind>.<option>` and are kept
 * as strings under `options` for the strategy's schema to coerce. Returns the settings and every
 * problem found, each naming its label.
 */
export function settingsFromLabels(
  labels: Record<string, string>,
  strategyKinds: readonly string[],
): { settings: Record<string, unknown>; problems: string[] } {
  const settings: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [label, raw] of Object.entries(labels)) {
    if (!label.startsWith("composure.")) continue;
    const known = labelReaders[label];
    if (known) {
      const { value, problem } = known.read(raw);
      if (problem) problems.push(`at label '${label}': ${problem}`);
      else setPath(settings, known.path, value);
      continue;
    }
    const [, kind, ...option] = label.split(".");
    if (strategyKinds.includes(kind) && option.length > 0) {
      setPath(settings, ["options", option.join(".")], raw);
      continue;
    }
    const optionLabels = strategyKinds.map((name) => `composure.${name}.`);
    problems.push(`at label '${label}': unknown label${didYouMean(label, [...knownLabels, ...optionLabels])}`);
  }
  return { settings, problems };
}

// Options of the elasticsearch strategy (labels `composure.elasticsearch.<option>` or
// `services.<name>.options` in composure.yml), image detection and the restore conflict policies.
import { z } from "zod";
import { UsageError } from "../../errors.ts";
import type { ServiceInfo } from "../../compose/discover.ts";
import { imagePath, listOption } from "../shared/in-container.ts";

const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "expected an environment variable name");
const absolutePath = z
  .string()
  .regex(/^\/[^\0]*$/, "expected an absolute path inside the container")
  .transform((value) => normalisePath(value));

/** Label strings "true"/"false" as booleans; YAML booleans as they are. */
const booleanOption = z.preprocess((value) => {
  if (typeof value !== "string") return value;
  const normalised = value.trim().toLowerCase();
  if (["true", "yes", "1", "on"].includes(normalised)) return true;
  if (["false", "no", "0", "off"].includes(normalised)) return false;
  return value;
}, z.boolean());

export const conflictPolicies = ["skip", "overwrite", "rename", "error"] as const;
export type ConflictPolicy = (typeof conflictPolicies)[number];

const conflictOption = z.preprocess((value) => (typeof value === "string" ? value.trim().toLowerCase() : value), z.enum(conflictPolicies));

export const elasticsearchOptions = z
  .object({
    /** Compose (or Docker) name of the volume holding the snapshot repository. */
    repository_volume: z.string().min(1).optional(),
    /** Directory inside the containers, under path.repo; the repository is `<repository_path>/composure`. */
    repository_path: absolutePath.optional(),
    /** Indices (names or patterns) to snapshot and restore; default every index. */
    indices: listOption.optional(),
    /** Indices (names or patterns) left out. */
    exclude_indices: listOption.optional(),
    /** Snapshot (and restore) cluster settings, templates and the like too. */
    include_global_state: booleanOption.default(false),
    /** Snapshots composure keeps in the live repository (older ones are deleted after a backup). */
    keep_snapshots: z.coerce.number().int().min(0).max(1000).default(1),
    /** The HTTP API as seen from inside the service's container. */
    url: z
      .string()
      .url()
      .refine((value) => /^https?:\/\//i.test(value), "expected an http:// or https:// URL")
      .refine((value) => !new URL(value).username && !new URL(value).password, "put credentials in user_env/password_env, not in the URL")
      .default("http://localhost:9200"),
    /** Env var (of the container, else of composure) holding the user name for basic auth. */
    user_env: envName.optional(),
    /** Env var (of the container, else of composure) holding the password for basic auth. */
    password_env: envName.optional(),
    /** CA certificate file inside the container, for an https:// url with a private CA. */
    ca_file: absolutePath.optional(),
    /** Services with the same value are nodes of one cluster (one snapshot for all of them). */
    cluster: z.string().min(1).optional(),
    /** What a restore does with indices that exist already (CONFLICT= overrides it per restore). */
    conflict: conflictOption.default("overwrite"),
    /** Prefix of restored copies with conflict=rename. */
    rename_prefix: z
      .string()
      .min(1)
      .regex(/^[a-z0-9][a-z0-9._+-]*$/, "expected lower-case letters, digits, '.', '_', '-' or '+' (an index name prefix)")
      .default("restored-"),
    /** Longest wait for a snapshot or a restore. */
    timeout_seconds: z.coerce.number().int().min(10).max(7 * 86_400).default(6 * 3600),
  })
  .strict();

export type ElasticsearchOptions = z.infer<typeof elasticsearchOptions>;

export function parseConflict(value: string, from: string): ConflictPolicy {
  const parsed = conflictOption.safeParse(value);
  if (!parsed.success) throw new UsageError(`${from} must be one of ${conflictPolicies.join(", ")}, not ${JSON.stringify(value)}`);
  return parsed.data;
}

/** /a//b/ -> /a/b */
export function normalisePath(value: string): string {
  const joined = `/${value.split("/").filter((part) => part && part !== ".").join("/")}`;
  return joined;
}

/** True when `inner` is `outer` or below it (both absolute, normalised). */
export function isWithin(inner: string, outer: string): boolean {
  const a = normalisePath(inner);
  const b = normalisePath(outer);
  return a === b || a.startsWith(b === "/" ? "/" : `${b}/`);
}

/** Images that are Elasticsearch or OpenSearch servers (registry, tag and digest ignored). */
export function isElasticsearchImage(image: string): boolean {
  const segments = imagePath(image);
  const last = segments.at(-1) ?? "";
  if (last === "elasticsearch") return true; // elasticsearch, elastic/elasticsearch, bitnami/elasticsearch, */elasticsearch
  if (last === "opensearch") return segments.length === 1 || ["opensearchproject", "bitnami", "composure-fixture"].includes(segments.at(-2)!);
  return false;
}

export function detectElasticsearch(service: ServiceInfo): boolean {
  return isElasticsearchImage(service.image);
}

// One zod schema for composure.yml. Compose labels are translated into the same service shape
// (see labels.ts) and validated by the same `serviceSettingsSchema`.
import { validateDetailed } from "node-cron";
import { z } from "zod";
import { retentionPolicySchema } from "../catalog/retention.ts";
import { tagSchema } from "../catalog/manifest.ts";
import { pathPatternsSchema } from "./path-patterns.ts";

export const tiers = ["critical", "medium", "low"] as const;
/** How a service's artifacts are kept: `archive` files (one per source) or a deduplicating restic `repository`. */
export const storageEngines = ["archive", "repository"] as const;
export type StorageEngine = (typeof storageEngines)[number];
const storageEngine = z.enum(storageEngines);
export type Tier = (typeof tiers)[number];

const argv = z.array(z.string().min(1)).min(1, "give the command as an argv array, e.g. [\"sh\", \"-c\", \"...\"]");

export const execHooksSchema = z
  .object({
    pre: argv.optional(),
    post: argv.optional(),
    timeout: z.number().positive().max(86_400).optional(),
  })
  .strict();

/**
 * How far a count may fall since the service's previous good run before the backup is marked
 * suspect: a share (0.5 or "50%": more than half gone), or false to compare nothing.
 */
export const shrinkAlertSchema = z
  .union([z.literal(false), z.number(), z.string().regex(/^\d+(\.\d+)?%$/, 'expected a share such as "50%" or 0.5, or false')])
  .transform((value) => (typeof value === "string" ? Number(value.slice(0, -1)) / 100 : value))
  .refine((value) => value === false || (value > 0 && value < 1), 'expected a share between 0 and 1 (exclusive) such as "50%" or 0.5, or false');

export const serviceSettingsSchema = z
  .object({
    strategy: z.string().min(1).optional(),
    stop: z.boolean().optional(),
    exclude: z.boolean().optional(),
    tier: z.enum(tiers).optional(),
    storage: storageEngine.optional(),
    volumes: z.array(z.string().min(1)).optional(),
    bind_mounts: z.boolean().optional(),
    /** Volume strategy: left out of every volume at capture (path patterns, see path-patterns.ts). */
    exclude_paths: pathPatternsSchema.optional(),
    /** Volume strategy: backed up, but a restore keeps the live volume's files unless RESTORE_SECRETS=1. */
    secret_paths: pathPatternsSchema.optional(),
    exec: execHooksSchema.optional(),
    shrink_alert: shrinkAlertSchema.optional(),
    /** Strategy-specific options, validated by the strategy's own schema. */
    options: z.record(z.unknown()).optional(),
  })
  .strict();

export type ServiceSettings = z.infer<typeof serviceSettingsSchema>;

export const metricsSchema = z
  .object({
    /** node_exporter textfile directory; relative to the config file like destination. */
    textfile_dir: z.string().min(1).default("exporters/textfile"),
  })
  .strict()
  .default({});

/** A cron expression (5 fields, or 6 with seconds for `make schedule`) that fires at least once; false turns the job off. */
const cronJob = z
  .union([z.literal(false), z.string()], { errorMap: () => ({ message: "expected a cron expression in quotes, or false" }) })
  .superRefine((value, ctx) => {
    if (value !== false) checkCronExpression(value, ctx);
  });

export const scheduleSchema = z
  .object({
    critical: cronJob.default("0 2 * * *"),
    medium: cronJob.default("0 3 * * 0"),
    low: cronJob.default("0 4 1 * *"),
    // verify before prune: retention.require_verified deletes a run only behind a verified newer one
    verify: cronJob.default("45 4 * * *"),
    /** Weekly restore drill of the latest run (make verify DEEP=1). */
    drill: cronJob.default("0 7 * * 6"),
    prune: cronJob.default("30 5 * * *"),
    sync: cronJob.default("0 5 * * *"),
  })
  .strict()
  .default({});

export type Schedule = z.infer<typeof scheduleSchema>;

export const webhookEvents = ["start", "success", "failure"] as const;
export type WebhookEvent = (typeof webhookEvents)[number];

export const webhookSchema = z
  .object({
    url: z
      .string()
      .url()
      .refine((url) => /^https?:\/\//i.test(url), "only http:// and https:// URLs are supported"),
    events: z.array(z.enum(webhookEvents)).min(1).default([...webhookEvents]),
    /** POST sends the JSON payload; GET is a plain ping (Healthchecks.io style). */
    method: z.enum(["POST", "GET"]).default("POST"),
    timeout_seconds: z.number().positive().max(300).default(10),
  })
  .strict();

export type Webhook = z.infer<typeof webhookSchema>;

export const notificationsSchema = z
  .object({ webhooks: z.array(webhookSchema).default([]) })
  .strict()
  .default({});

/** age public keys: backups need no secret; the identity file is read only to restore or verify deeply. */
const encryptionSchema = z
  .object({
    recipients: z.array(z.string().regex(/^(age1[0-9a-z]{58}|ssh-(ed25519|rsa) \S+.*)$/, "expected an age public key (age1...) or an ssh public key")).min(1),
    identity_file: z.string().min(1).optional(),
  })
  .strict();

const remoteSchema = z
  .object({
    /** rclone remote and path, e.g. "offsite:backups/composure", or a local path. */
    target: z.string().min(1),
    config_file: z.string().min(1).optional(),
    /**
     * The rclone config file `make prune FROM=remote` uses instead of config_file: credentials that
     * may delete, kept off the backup host's everyday path when the remote is append-only for config_file's.
     */
    prune_config_file: z.string().min(1).optional(),
    bwlimit: z.string().regex(/^[0-9.]+[KMGkmg]?$/, 'expected an rclone bandwidth such as "10M"').optional(),
    transfers: z.number().int().min(1).max(64).default(4),
    /** S3 only: the multipart part size (rclone --s3-chunk-size; S3 wants 5 MiB or more, at most 10,000 parts a file). */
    chunk_size: z.string().regex(/^[0-9]+(\.[0-9]+)?[KMGkmg]i?$/, 'expected an rclone size such as "64M"').optional(),
    /** After upload: compare sizes, and sha256 where the backend can hash ("hash" downloads to hash when it cannot). */
    check: z.enum(["size", "hash"]).default("size"),
    upload: z.boolean().default(true),
  })
  .strict();

/** The restic repository of the `repository` engine; paths relative to the config file. */
const repositorySchema = z
  .object({
    /** Default: <destination>/<project>/.repository, one per project. A path given here is shared by every project. */
    path: z.string().min(1).optional(),
    /** Default: <destination>/.repository-password, made (0600) on first use. */
    password_file: z.string().min(1).optional(),
    /**
     * restic's --compression for what this host adds: auto (its fast zstd level), off (data that is
     * compressed already, such as Cassandra SSTables or media: about twice as fast, stored as is),
     * max (smaller, several times slower).
     */
    compression: z.enum(["auto", "off", "max"]).default("auto"),
    /** Share of the repository's data `make verify DEEP=1` reads back (restic check --read-data-subset). */
    verify_read_share: z.string().regex(/^(100|[1-9]?[0-9](\.[0-9]+)?)%$/, 'expected a share such as "5%"').default("5%"),
  })
  .strict()
  .default({});

/** The engine per tier, when services of a tier do not choose one themselves. */
const storageByTier = z.object({ default: storageEngine.default("archive"), critical: storageEngine.optional(), medium: storageEngine.optional(), low: storageEngine.optional() }).strict();

const locationsSchema = z.object({ local: retentionPolicySchema.optional(), remote: retentionPolicySchema.optional() }).strict();

/** Grandfather-father-son policies per location; a tier may override them (a run is kept if any tier in it keeps it). */
const retentionSchema = z
  .object({
    local: retentionPolicySchema.optional(),
    remote: retentionPolicySchema.optional(),
    tiers: z.object({ critical: locationsSchema.optional(), medium: locationsSchema.optional(), low: locationsSchema.optional() }).strict().optional(),
    incomplete_grace_hours: z.number().positive().default(24),
    /** A run is deleted only once a newer complete run of each of its services passed make verify. */
    require_verified: z.boolean().default(true),
    /** Runs carrying any of these tags (make backup TAG=) are pinned: no policy deletes them. */
    pin_tags: z.array(tagSchema).default([]),
  })
  .strict();

/**
 * zstd 2 rather than zstd's own 3: in stop mode the service is down while zstd runs, and on two
 * cores its CPU time is most of a capture. Measured on real data (system libraries, 698 MB):
 * level 2 takes 26% less CPU than 3 for 4.9% more bytes (level 1: 38% less for 11.5% more).
 * gzip keeps its usual 6.
 */
const defaultCompressionLevel = { zstd: 2, gzip: 6 } as const;

export const configSchema = z
  .object({
    destination: z.string().min(1).default("backups"),
    projects: z.array(z.string().min(1)).optional(),
    helper_image: z.string().min(1).optional(),
    compression: z
      .object({ algorithm: z.enum(["zstd", "gzip"]).default("zstd"), level: z.number().int().min(1).max(19).optional() })
      .strict()
      .default({})
      .transform((compression) => ({ ...compression, level: compression.level ?? defaultCompressionLevel[compression.algorithm] })),
    encryption: encryptionSchema.optional(),
    /** archive (default), repository, or per tier: { default: archive, critical: repository }. */
    storage: z
      .union([storageEngine, storageByTier])
      .default("archive")
      .transform((storage) => (typeof storage === "string" ? { default: storage } : storage)),
    repository: repositorySchema,
    remote: remoteSchema.optional(),
    retention: retentionSchema.default({}),
    lock: z
      .object({ timeout_seconds: z.number().int().min(0).max(86_400).default(600) })
      .strict()
      .default({}),
    stop_timeout_seconds: z.number().int().min(0).max(3600).default(30),
    /** Units (a service, a cluster, services sharing a volume) captured at once; default: the cores, at most 4. */
    parallelism: z.number().int().min(1).max(64).optional(),
    services: z.record(serviceSettingsSchema).default({}),
    metrics: metricsSchema,
    schedule: scheduleSchema,
    notifications: notificationsSchema,
  })
  .strict();

export type Config = z.infer<typeof configSchema>;

/** The engine that keeps a service's artifacts: its own setting, else its tier's, else the default. */
export function storageEngineOf(config: Config, settings: ServiceSettings): StorageEngine {
  return settings.storage ?? config.storage[settings.tier ?? "medium"] ?? config.storage.default;
}

/** All keys the schema accepts at each level, for did-you-mean suggestions. */
export const knownKeys: Record<string, readonly string[]> = {
  "": Object.keys(configSchema.shape),
  service: Object.keys(serviceSettingsSchema.shape),
  exec: Object.keys(execHooksSchema.shape),
};

/** node-cron's own validation, which also rejects dates that never come (February 30). */
function checkCronExpression(expression: string, ctx: z.RefinementCtx): void {
  const result = validateDetailed(expression.trim());
  if (result.valid) return;
  const reasons = result.errors.map((error) => error.message).join("; ");
  ctx.addIssue({ code: z.ZodIssueCode.custom, message: `invalid cron expression "${expression}": ${reasons} (write 5 fields "minute hour day-of-month month day-of-week", 6 with seconds first, or false to turn the job off)` });
}

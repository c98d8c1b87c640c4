// One zod schema for composure.yml. Compose labels are translated into the same service shape
// (see labels.ts) and validated by the same `serviceSettingsSchema`.
import { z } from "zod";

export const tiers = ["critical", "medium", "low"] as const;
export type Tier = (typeof tiers)[number];

const argv = z.array(z.string().min(1)).min(1, "give the command as an argv array, e.g. [\"sh\", \"-c\", \"...\"]");

export const execHooksSchema = z
  .object({
    pre: argv.optional(),
    post: argv.optional(),
    timeout: z.number().positive().max(86_400).optional(),
  })
  .strict();

export const serviceSettingsSchema = z
  .object({
    strategy: z.string().min(1).optional(),
    stop: z.boolean().optional(),
    exclude: z.boolean().optional(),
    tier: z.enum(tiers).optional(),
    volumes: z.array(z.string().min(1)).optional(),
    bind_mounts: z.boolean().optional(),
    exec: execHooksSchema.optional(),
    /** Strategy-specific options, validated by the strategy's own schema. */
    options: z.record(z.unknown()).optional(),
  })
  .strict();

export type ServiceSettings = z.infer<typeof serviceSettingsSchema>;

export const configSchema = z
  .object({
    destination: z.string().min(1).default("backups"),
    projects: z.array(z.string().min(1)).optional(),
    helper_image: z.string().min(1).optional(),
    compression: z
      .object({ level: z.number().int().min(1).max(19).default(3) })
      .strict()
      .default({}),
    lock: z
      .object({ timeout_seconds: z.number().int().min(0).max(86_400).default(600) })
      .strict()
      .default({}),
    stop_timeout_seconds: z.number().int().min(0).max(3600).default(30),
    services: z.record(serviceSettingsSchema).default({}),
  })
  .strict();

export type Config = z.infer<typeof configSchema>;

/** All keys the schema accepts at each level, for did-you-mean suggestions. */
export const knownKeys: Record<string, readonly string[]> = {
  "": Object.keys(configSchema.shape),
  service: Object.keys(serviceSettingsSchema.shape),
  exec: Object.keys(execHooksSchema.shape),
};

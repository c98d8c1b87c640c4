// What the run folders alone do not say, kept next to them in `<destination>/<project>/.status.json`:
// each service's tier and exclusion as the last plan resolved them (labels need the engine to
// read), the last verify / restore drill result per service, and the outcome of the last
// invocation of each command. (Off-site copies are read from each run's upload.json.) Read-modify-write with an atomic rename; a missing or
// unreadable file is an empty status, never an error.
import { readFile, rename, writeFile, mkdir } from "node:fs/promises";
import path from "node:path";
import { z } from "zod";
import { tiers } from "../config/schema.ts";
import { projectDir } from "../catalog/runs.ts";

export const statusFile = ".status.json";

/** seconds: how long the check took (restore drills: restore until the service answered, the RTO). */
const checkSchema = z.object({ ok: z.boolean(), at: z.string(), run: z.string().optional(), seconds: z.number().nonnegative().optional() });
export type CheckResult = z.infer<typeof checkSchema>;

/** Checks recorded per service: verify (make verify), restore_drill (make verify DEEP=1). */
export const checkKinds = ["verify", "restore_drill"] as const;
export type CheckKind = (typeof checkKinds)[number];

const statusSchema = z.object({
  format: z.literal("composure-status/1"),
  services: z.record(z.object({ tier: z.enum(tiers), excluded: z.boolean() })).default({}),
  checks: z.object({ verify: z.record(checkSchema).default({}), restore_drill: z.record(checkSchema).default({}) }).default({}),
  invocations: z.record(checkSchema).default({}),
});

export type ProjectStatus = z.infer<typeof statusSchema>;

export function emptyStatus(): ProjectStatus {
  return statusSchema.parse({ format: "composure-status/1" });
}

export async function readStatus(destination: string, project: string): Promise<ProjectStatus> {
  try {
    const parsed = statusSchema.safeParse(JSON.parse(await readFile(path.join(projectDir(destination, project), statusFile), "utf8")));
    return parsed.success ? parsed.data : emptyStatus();
  } catch {
    return emptyStatus();
  }
}

/** Applies `change` to the stored status and writes it back atomically. */
export async function updateStatus(destination: string, project: string, change: (status: ProjectStatus) => void): Promise<ProjectStatus> {
  const status = await readStatus(destination, project);
  change(status);
  const dir = projectDir(destination, project);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const target = path.join(dir, statusFile);
  const temporary = `${target}.${process.pid}.tmp`;
  await writeFile(temporary, `${JSON.stringify(status, null, 2)}\n`, { mode: 0o600 });
  await rename(temporary, target);
  return status;
}

// `make backup` for one project as operators see it from outside: the plan (narrowed to a tier
// with TIER=), the start / success / failure webhooks around runBackup, and in a `finally` the
// node_exporter textfile, so a run that fails or throws is recorded too.
import type { Config, Tier } from "../config/schema.ts";
import type { RunLabels } from "../catalog/manifest.ts";
import { UsageError, messageOf } from "../errors.ts";
import { log } from "../log.ts";
import { recordInvocation, defaultTier, type PlannedTier } from "../metrics/textfile.ts";
import { notify, payloadOf, summariesOf } from "../notifications/webhooks.ts";
import { runBackup } from "./backup.ts";
import type { ProjectPlan } from "./plan.ts";

export function tierOfPlanned(planned: ProjectPlan["services"][number]): Tier {
  return planned.settings.tier ?? defaultTier;
}

/** TIER=: only the services of that tier (label composure.tier / services.<name>.tier, default medium). */
export function narrowToTier(plan: ProjectPlan, tier: Tier | undefined): ProjectPlan {
  if (!tier) return plan;
  return { ...plan, services: plan.services.filter((planned) => tierOfPlanned(planned) === tier) };
}

export function parseTier(value: string | undefined, known: readonly string[]): Tier | undefined {
  if (!value) return undefined;
  if (!known.includes(value)) throw new UsageError(`TIER=${value} is not a tier: use one of ${known.join(", ")}`);
  return value as Tier;
}

export interface MonitoredBackupResult {
  /** false when the run was partial or failed; a thrown error propagates instead. */
  ok: boolean;
  /** false when TIER= left no service to back up (no run was made). */
  ran: boolean;
}

/**
 * Runs the backup of an already planned project with notifications and metrics around it.
 * `plan` is the full plan (all tiers), so the textfile learns every service's tier.
 */
export async function backupPlannedProject(config: Config, plan: ProjectPlan, helperImage: string, tier?: Tier, marks: RunLabels = {}): Promise<MonitoredBackupResult> {
  const project = plan.project.name;
  const webhooks = config.notifications.webhooks;
  const planned: PlannedTier[] = plan.services.map((entry) => ({ name: entry.service.name, tier: tierOfPlanned(entry), excluded: entry.excluded }));
  const tierByName = new Map(planned.map((entry) => [entry.name, entry.tier]));
  const chosen = narrowToTier(plan, tier);
  let ok = false;
  try {
    if (!chosen.services.some((entry) => !entry.excluded)) {
      log.info(`project ${project}: no service${tier ? ` of tier ${tier}` : ""} to back up`);
      ok = true;
      return { ok, ran: false };
    }
    const services = chosen.services.filter((entry) => !entry.excluded).map((entry) => ({ name: entry.service.name, tier: tierOfPlanned(entry) }));
    await notify(webhooks, payloadOf("start", project, { services }));
    let manifest;
    let uploadError: string | undefined;
    try {
      ({ manifest, uploadError } = await runBackup(config, chosen, helperImage, tier ? `backup of the ${tier} tier` : undefined, marks));
    } catch (error) {
      await notify(webhooks, payloadOf("failure", project, { outcome: "failed", services, error: messageOf(error) }));
      throw error;
    }
    ok = manifest.outcome === "success" && !uploadError;
    const summary = { runId: manifest.runId, outcome: manifest.outcome, services: summariesOf(manifest, (name) => tierByName.get(name)) };
    await notify(webhooks, payloadOf(ok ? "success" : "failure", project, uploadError ? { ...summary, error: `off-site copy failed: ${uploadError}` } : summary));
    return { ok, ran: true };
  } finally {
    await recordInvocation(config, project, { command: "backup", ok, planned });
  }
}

/** When planning itself fails (bad labels, project gone), the invocation is still recorded. */
export async function recordFailedBackup(config: Config, project: string, error: unknown): Promise<void> {
  await notify(config.notifications.webhooks, payloadOf("failure", project, { outcome: "failed", error: messageOf(error) }));
  await recordInvocation(config, project, { command: "backup", ok: false });
}

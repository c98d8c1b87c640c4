// The series composure writes, and a pure function from a project's state to a dedicated
// prom-client Registry (never the global one). Timestamps, not ages: Prometheus computes the
// age with time() - composure_last_success_timestamp_seconds, so the file stays true while
// nobody rewrites it.
import { Gauge, Registry } from "prom-client";
import type { Tier } from "../config/schema.ts";
import type { CheckResult } from "./status.ts";

const serviceLabels = ["project", "service", "tier"] as const;

/** Every series composure writes: name -> help and labels. The dashboard test checks queries against these names. */
export const metricDefinitions = {
  composure_last_success_timestamp_seconds: { help: "When the newest complete run holding a good backup of the service finished (Unix seconds). Absent until the first success.", labels: serviceLabels },
  composure_last_run_timestamp_seconds: { help: "When the newest complete run that tried the service finished, good or not (Unix seconds).", labels: serviceLabels },
  composure_last_run_success: { help: "1 when the newest run that tried the service backed it up, 0 when it failed.", labels: serviceLabels },
  composure_last_run_duration_seconds: { help: "Wall time of the service's part of its newest run (hooks, prepare, capture, release).", labels: serviceLabels },
  composure_last_downtime_seconds: { help: "How long the service's containers were stopped in its newest run (0 for hot backups).", labels: serviceLabels },
  composure_last_archive_bytes: { help: "Bytes of the service's artifacts in its newest good backup: archive files as stored (compressed), repository snapshots as read (the source's size).", labels: serviceLabels },
  composure_last_added_bytes: { help: "Bytes the service's newest good backup added to storage: an archive file's size, or what a repository snapshot added after deduplication and compression.", labels: serviceLabels },
  composure_last_backup_suspect: { help: "1 when the service's newest good backup is suspected of data loss (a table, index, keyspace or Redis database gone, or a count fell by more than its shrink_alert share since the run before) and nobody accepted it yet (make accept), else 0.", labels: serviceLabels },
  composure_last_backup_largest_drop_ratio: { help: "The largest share by which any count of the service's newest good backup fell since its previous good run (1: something is gone, 0: nothing fell). Absent when there was nothing to compare.", labels: serviceLabels },
  composure_repository_bytes: { help: "Size on disk of the project's restic repository (the repository storage engine). Absent when the project has none.", labels: ["project"] as const },
  composure_backups: { help: "Number of complete runs holding a good backup of the service, per location (local for now).", labels: [...serviceLabels, "location"] as const },
  composure_last_verify_success: { help: "1 when the last make verify found every artifact of the service intact, 0 otherwise.", labels: serviceLabels },
  composure_last_verify_timestamp_seconds: { help: "When make verify last checked the service's artifacts (Unix seconds).", labels: serviceLabels },
  composure_last_restore_drill_success: { help: "1 when the last restore drill of the service restored and answered, 0 otherwise. Present only once a drill has run.", labels: serviceLabels },
  composure_last_restore_drill_timestamp_seconds: { help: "When the last restore drill of the service ran (Unix seconds).", labels: serviceLabels },
  composure_last_restore_drill_duration_seconds: { help: "How long the last restore drill of the service took to restore until the copy answered (the measured RTO).", labels: serviceLabels },
  composure_last_upload_success: { help: "1 when the last off-site copy (upload after a backup, or make sync) of a run of the project succeeded, 0 when it failed. Present once a remote is used.", labels: ["project", "location"] as const },
  composure_last_upload_timestamp_seconds: { help: "When the last off-site copy of a run of the project ended (Unix seconds).", labels: ["project", "location"] as const },
  composure_last_invocation_success: { help: "1 when the last invocation of the command (backup, verify, sync) for the project succeeded, 0 when it failed or ended in error.", labels: ["project", "command"] as const },
  composure_last_invocation_timestamp_seconds: { help: "When the last invocation of the command for the project ended (Unix seconds).", labels: ["project", "command"] as const },
} as const;

export type MetricName = keyof typeof metricDefinitions;
export const metricNames = Object.keys(metricDefinitions) as MetricName[];

export interface ServiceState {
  service: string;
  tier: Tier;
  lastRun?: { at: number; ok: boolean; durationSeconds: number; downtimeSeconds: number };
  /** suspect: suspected data loss not accepted; largestDrop: from the fact trend, when there was one. */
  lastSuccess?: { at: number; bytes: number; addedBytes: number; suspect?: boolean; largestDrop?: number };
  localBackups: number;
  verify?: CheckResult;
  restoreDrill?: CheckResult;
}

export interface ProjectState {
  project: string;
  services: ServiceState[];
  uploads: Record<string, CheckResult>;
  invocations: Record<string, CheckResult>;
  /** Size on disk of the project's repository, when it has one. */
  repositoryBytes?: number;
}

const seconds = (iso: string) => Date.parse(iso) / 1000;
const bit = (ok: boolean) => (ok ? 1 : 0);

export function buildRegistry(state: ProjectState): Registry {
  const registry = new Registry();
  const gauges = Object.fromEntries(
    metricNames.map((name) => [name, new Gauge({ name, help: metricDefinitions[name].help, labelNames: [...metricDefinitions[name].labels], registers: [registry] })]),
  ) as Record<MetricName, Gauge<string>>;
  const { project } = state;
  for (const entry of [...state.services].sort((a, b) => a.service.localeCompare(b.service))) {
    const labels = { project, service: entry.service, tier: entry.tier };
    if (entry.lastSuccess) {
      gauges.composure_last_success_timestamp_seconds.set(labels, entry.lastSuccess.at);
      gauges.composure_last_archive_bytes.set(labels, entry.lastSuccess.bytes);
      gauges.composure_last_added_bytes.set(labels, entry.lastSuccess.addedBytes);
      gauges.composure_last_backup_suspect.set(labels, bit(entry.lastSuccess.suspect ?? false));
      if (entry.lastSuccess.largestDrop !== undefined) gauges.composure_last_backup_largest_drop_ratio.set(labels, entry.lastSuccess.largestDrop);
    }
    if (entry.lastRun) {
      gauges.composure_last_run_timestamp_seconds.set(labels, entry.lastRun.at);
      gauges.composure_last_run_success.set(labels, bit(entry.lastRun.ok));
      gauges.composure_last_run_duration_seconds.set(labels, entry.lastRun.durationSeconds);
      gauges.composure_last_downtime_seconds.set(labels, entry.lastRun.downtimeSeconds);
    }
    gauges.composure_backups.set({ ...labels, location: "local" }, entry.localBackups);
    if (entry.verify) {
      gauges.composure_last_verify_success.set(labels, bit(entry.verify.ok));
      gauges.composure_last_verify_timestamp_seconds.set(labels, seconds(entry.verify.at));
    }
    if (entry.restoreDrill) {
      gauges.composure_last_restore_drill_success.set(labels, bit(entry.restoreDrill.ok));
      gauges.composure_last_restore_drill_timestamp_seconds.set(labels, seconds(entry.restoreDrill.at));
      if (entry.restoreDrill.seconds !== undefined) gauges.composure_last_restore_drill_duration_seconds.set(labels, entry.restoreDrill.seconds);
    }
  }
  if (state.repositoryBytes !== undefined) gauges.composure_repository_bytes.set({ project }, state.repositoryBytes);
  for (const [location, upload] of Object.entries(state.uploads)) {
    gauges.composure_last_upload_success.set({ project, location }, bit(upload.ok));
    gauges.composure_last_upload_timestamp_seconds.set({ project, location }, seconds(upload.at));
  }
  for (const [command, invocation] of Object.entries(state.invocations)) {
    gauges.composure_last_invocation_success.set({ project, command }, bit(invocation.ok));
    gauges.composure_last_invocation_timestamp_seconds.set({ project, command }, seconds(invocation.at));
  }
  return registry;
}

/**
 * The registry in the text exposition format, without families that have no sample yet (a
 * HELP/TYPE pair alone says nothing and some parsers dislike it).
 */
export async function renderRegistry(registry: Registry): Promise<string> {
  const text = await registry.metrics();
  const families = text.split(/\n(?=# HELP )/);
  return `${families
    .filter((family) => family.split("\n").some((line) => line.trim() !== "" && !line.startsWith("#")))
    .map((family) => family.trimEnd())
    .join("\n")}\n`;
}

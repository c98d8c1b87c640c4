// What a volume restore leaves as the live volume has it: the paths the backup left out
// (exclude_paths as recorded at backup time, unless CLEAN=1) and the secret paths (recorded, or
// set now; unless RESTORE_SECRETS=1). Only what the live volume has is kept: a secret it lacks (a
// fresh or emptied volume) comes from the backup.
import type { Artifact } from "../../catalog/manifest.ts";
import { findTest, parsePathPatterns, type PathPattern } from "../../config/path-patterns.ts";
import { withHelper } from "../../docker/helper.ts";
import type { RestoreContext } from "../types.ts";

export interface KeptPaths {
  /** Left out at capture: kept from the live volume. */
  excluded: string[];
  /** Stored, but kept from the live volume. */
  secrets: string[];
  /** Both, as one list of patterns for the swap. */
  patterns: PathPattern[];
}

/** Path patterns an artifact's facts recorded at backup time ("excludePaths", "secretPaths"). */
export const recordedPaths = (artifact: Artifact, key: "excludePaths" | "secretPaths"): string[] => {
  const value = artifact.facts?.[key];
  return Array.isArray(value) ? value.filter((item): item is string => typeof item === "string") : [];
};

/** secret_paths recorded at backup time and those set now. */
const secretPathsOf = (ctx: RestoreContext<unknown>, artifact: Artifact) => [...new Set([...recordedPaths(artifact, "secretPaths"), ...(ctx.settings.secret_paths ?? [])])];

/** The patterns whose live entries a restore of `artifact` keeps, when the volume exists. */
export function keptPaths(ctx: RestoreContext<unknown>, artifact: Artifact): KeptPaths {
  const excluded = ctx.clean ? [] : recordedPaths(artifact, "excludePaths");
  const secrets = ctx.restoreSecrets ? [] : secretPathsOf(ctx, artifact);
  return { excluded, secrets, patterns: parsePathPatterns([...new Set([...excluded, ...secrets])]) };
}

/**
 * How a restore treats those paths, one clause each: for the preview (`liveSecrets`: what the
 * live volume holds of them), or, `done`, for the result line.
 */
export function describeKeptPaths(ctx: RestoreContext<unknown>, artifact: Artifact, exists: boolean, said: { done?: boolean; liveSecrets?: string[] } = {}): string[] {
  const verb = (present: string, past: string) => (said.done ? past : present);
  const kept = keptPaths(ctx, artifact);
  const leftOut = recordedPaths(artifact, "excludePaths");
  const secrets = secretPathsOf(ctx, artifact);
  const clauses: string[] = [];
  if (exists && kept.excluded.length) clauses.push(`${verb("keep", "kept")} what the backup left out (${kept.excluded.join(", ")}) as the live volume has it (CLEAN=1 removes it)`);
  if (exists && ctx.clean && leftOut.length) clauses.push(`CLEAN=1: ${verb("remove", "removed")} what the backup left out (${leftOut.join(", ")})`);
  if (exists && kept.secrets.length) {
    const found = said.liveSecrets ? `: ${said.liveSecrets.join(", ") || "none in the live volume"}` : "";
    clauses.push(`${verb("keep", "kept")} the live secret paths (${kept.secrets.join(", ")}${found}; what the live volume lacks comes from the backup; RESTORE_SECRETS=1 restores them all from the backup)`);
  }
  if (secrets.length && (!exists || ctx.restoreSecrets)) clauses.push(`${verb("restore", "restored")} the secret paths (${secrets.join(", ")}) from the backup${exists ? " (RESTORE_SECRETS=1)" : ": the volume is new"}`);
  return clauses;
}

/** The live entries the secret patterns match (for the preview), read through a read-only helper. */
export async function liveSecretEntries(ctx: RestoreContext<unknown>, artifact: Artifact, source: string): Promise<string[]> {
  const { secrets } = keptPaths(ctx, artifact);
  if (!secrets.length) return [];
  const listing = ["sh", "-c", 'cd /volume && find . -mindepth 1 "$@" -prune -print | head -n 20', "sh", ...findTest(parsePathPatterns(secrets))];
  const result = await withHelper(ctx.helperImage, ctx.project.name, [`${source}:/volume:ro`], (helper) => helper.run(listing));
  return result.stdout.split("\n").filter(Boolean).map((name) => name.replace(/^\.\//, ""));
}

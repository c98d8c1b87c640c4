// Restore: the archived repository is unpacked into a fresh directory under path.repo on the
// shared volume, registered read-only under a name of its own, and the run's snapshot restored
// from it with a conflict policy for indices that exist already. Afterwards the temporary
// registration and the unpacked directory are removed, whatever happened.
import { randomBytes } from "node:crypto";
import path from "node:path";
import type { Artifact } from "../../catalog/manifest.ts";
import { StepError } from "../../errors.ts";
import { formatSeconds, log } from "../../log.ts";
import type { RestoreContext, ScopeSlot } from "../types.ts";
import { formatCount } from "../shared/in-container.ts";
import { withHelper } from "../../docker/helper.ts";
import { documentDifference, snapshotToArchive, type SnapshotFacts } from "./backup.ts";
import { checkCluster, findRepositoryPlace, openCluster, type ClusterView, type RepositoryPlace } from "./cluster.ts";
import { call, seg } from "./http.ts";
import { conflictPolicies, parseConflict, type ConflictPolicy, type ElasticsearchOptions } from "./options.ts";
import { getSnapshot, indexStats, listIndices, registerRepository, snapshotProblem, unregisterRepository, waitForYellow } from "./snapshot.ts";

export interface RestoreEntry {
  /** The index in the snapshot. */
  index: string;
  /** The name it gets in the cluster. */
  target: string;
  action: "restore" | "overwrite" | "rename" | "skip";
  documents?: number;
}

export interface RestorePlan {
  entries: RestoreEntry[];
  /** Reasons the restore cannot go ahead (nothing was changed). */
  problems: string[];
}

/** "logs-*" style patterns (only * is special). */
export function matchesPattern(name: string, pattern: string): boolean {
  const regex = new RegExp(`^${pattern.split("*").map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join(".*")}$`);
  return regex.test(name);
}

/**
 * The indices of the snapshot to restore: VOLUME=<index> picks one; else the `indices` and
 * `exclude_indices` options; by default every index except hidden/system ones (names starting
 * with a dot), which are restored only when named.
 */
export function selectIndices(snapshotIndices: string[], only: string | undefined, options: Pick<ElasticsearchOptions, "indices" | "exclude_indices">): string[] {
  if (only) return snapshotIndices.filter((index) => index === only);
  const include = (options.indices ?? []).filter((pattern) => !pattern.startsWith("-"));
  const exclude = [...(options.exclude_indices ?? []), ...(options.indices ?? []).filter((pattern) => pattern.startsWith("-")).map((pattern) => pattern.slice(1))];
  return snapshotIndices.filter((index) => {
    const included = include.length ? include.some((pattern) => matchesPattern(index, pattern)) : !index.startsWith(".");
    return included && !exclude.some((pattern) => matchesPattern(index, pattern));
  });
}

/** What each policy does with each selected index, given the indices the cluster has now. */
export function planRestore(selected: string[], existing: Set<string>, policy: ConflictPolicy, renamePrefix: string, documents: Record<string, number> = {}): RestorePlan {
  const entries: RestoreEntry[] = [];
  const problems: string[] = [];
  for (const index of selected) {
    const present = existing.has(index);
    const documentsOf = documents[index];
    if (policy === "rename") {
      const target = `${renamePrefix}${index}`;
      if (existing.has(target)) problems.push(`index ${target} (the renamed copy of ${index}) exists already: delete it, or choose another rename_prefix`);
      entries.push({ index, target, action: "rename", documents: documentsOf });
    } else if (!present) {
      entries.push({ index, target: index, action: "restore", documents: documentsOf });
    } else if (policy === "skip") {
      entries.push({ index, target: index, action: "skip", documents: documentsOf });
    } else if (policy === "overwrite") {
      entries.push({ index, target: index, action: "overwrite", documents: documentsOf });
    } else {
      problems.push(`index ${index} exists already (CONFLICT=error): choose CONFLICT=overwrite, skip or rename`);
      entries.push({ index, target: index, action: "skip", documents: documentsOf });
    }
  }
  return { entries, problems };
}

/** One phrase for what a policy would do, for the dry run ("skip would restore events"). */
export function summarisePolicy(policy: ConflictPolicy, plan: RestorePlan): string {
  const names = (action: RestoreEntry["action"]) => plan.entries.filter((entry) => entry.action === action);
  const list = (entries: RestoreEntry[]) => entries.map((entry) => entry.target).join(", ");
  const fresh = names("restore");
  switch (policy) {
    case "skip":
      return `skip would restore ${fresh.length ? list(fresh) : "nothing"}`;
    case "overwrite": {
      const replaced = names("overwrite");
      return `overwrite would ${replaced.length ? `replace ${list(replaced)}${fresh.length ? ` and restore ${list(fresh)}` : ""}` : `restore ${list(fresh) || "nothing"}`}`;
    }
    case "rename":
      return plan.problems.length ? `rename would refuse (${plan.problems.length} renamed cop${plan.problems.length === 1 ? "y exists" : "ies exist"})` : `rename would create ${list(names("rename")) || "nothing"}`;
    case "error": {
      const present = plan.entries.filter((entry) => entry.action === "skip").map((entry) => entry.index);
      return present.length ? `error would refuse (${present.join(", ")} exist${present.length === 1 ? "s" : ""})` : `error would restore ${list(fresh) || "nothing"}`;
    }
  }
}

export function describeEntry(entry: RestoreEntry, rescue: boolean): string {
  const count = entry.documents === undefined ? "" : ` (${formatCount(entry.documents)} documents)`;
  switch (entry.action) {
    case "restore":
      return `index ${entry.index}${count}: does not exist, restore it`;
    case "overwrite":
      return `index ${entry.index}${count}: exists, ${rescue ? "snapshot it into the rescue run, then " : ""}delete it and restore the snapshot's copy`;
    case "rename":
      return `index ${entry.index}${count}: restore it as ${entry.target} (the live ${entry.index}, if any, is left alone)`;
    case "skip":
      return `index ${entry.index}${count}: exists, skip it (left as it is)`;
  }
}

function snapshotFactsOf(artifact: Artifact): SnapshotFacts {
  const facts = artifact.facts as Partial<SnapshotFacts> | undefined;
  if (facts?.kind !== "snapshot-repository" || typeof facts.snapshot !== "string" || !Array.isArray(facts.indices)) {
    throw new Error(`artifact ${artifact.path} is not a snapshot repository composure knows (facts.kind ${JSON.stringify(facts?.kind)})`);
  }
  return facts as SnapshotFacts;
}

export async function restoreCluster(ctx: RestoreContext<unknown>, options: ElasticsearchOptions, artifacts: Artifact[]): Promise<string[]> {
  const phase = "restore";
  if (artifacts.length === 0) {
    const capturedWith = typeof ctx.record.facts?.capturedWith === "string" ? ctx.record.facts.capturedWith : undefined;
    const leader = ctx.record.artifacts.length > 0 ? "this service" : (capturedWith ?? "another service of the same cluster (see its record in the manifest)");
    return [`nothing to restore here: the cluster's snapshot is restored with ${leader}`];
  }
  if (!ctx.service) {
    throw new StepError(phase, ctx.serviceName, new Error(`service ${ctx.serviceName} does not run in project ${ctx.project.name}`), `a snapshot is restored into the running cluster: start it (docker compose up -d), then restore again`);
  }
  const policy = ctx.conflict ? parseConflict(ctx.conflict, "CONFLICT") : options.conflict;
  const lines: string[] = [];
  for (const artifact of artifacts) {
    const facts = snapshotFactsOf(artifact);
    try {
      lines.push(...(await restoreArtifact(ctx, options, policy, artifact, facts)));
    } catch (error) {
      throw error instanceof StepError ? error : new StepError(phase, ctx.serviceName, error);
    }
  }
  return lines;
}

async function removeLeftoverRegistrations(view: ClusterView): Promise<void> {
  const registered = Object.keys(await call<Record<string, unknown>>(view.client, "GET", "/_snapshot", undefined, 60_000));
  for (const name of registered.filter((candidate) => candidate.startsWith("composure-restore-"))) {
    log.warn(`removing the registration of ${name}, left by an interrupted restore`);
    await unregisterRepository(view.client, name);
  }
}

/**
 * The preview (dry run) and the restore that follows within a minute share one look at the
 * cluster: kept per service record in the restore's scope (preview and restore share it).
 */
const recentViews: ScopeSlot<Map<object, { view: Promise<ClusterView>; at: number }>> = { name: "elasticsearch: the clusters this restore looked at", create: () => new Map() };

function clusterFor(ctx: RestoreContext<unknown>, options: ElasticsearchOptions): Promise<ClusterView> {
  const views = ctx.scope.get(recentViews);
  const recent = views.get(ctx.record);
  if (recent && Date.now() - recent.at < 60_000) return recent.view;
  const view = openCluster(ctx.project, ctx.service!, options);
  views.set(ctx.record, { view, at: Date.now() });
  view.catch(() => views.delete(ctx.record));
  return view;
}

async function restoreArtifact(ctx: RestoreContext<unknown>, options: ElasticsearchOptions, policy: ConflictPolicy, artifact: Artifact, facts: SnapshotFacts): Promise<string[]> {
  const view = await clusterFor(ctx, options);
  const place = findRepositoryPlace(view, ctx.project, options);
  checkCluster(view, place, ctx.project.name);
  const selected = selectIndices(facts.indices, ctx.volume, options);
  if (ctx.volume && selected.length === 0) throw new Error(`snapshot ${facts.snapshot} has no index ${ctx.volume} (it has: ${facts.indices.join(", ") || "none"})`);
  const existing = new Set(await listIndices(view.client));
  const plan = planRestore(selected, existing, policy, options.rename_prefix, facts.documents);
  const rescue = Boolean(ctx.rescue);
  if (ctx.dryRun) {
    const header = `would restore snapshot ${facts.snapshot} from ${artifact.path} into cluster ${view.name} (CONFLICT=${policy}; unpacked under ${place.root}, registered read-only, removed afterwards):`;
    const body = plan.entries.map((entry) => `  ${describeEntry(entry, rescue)}`);
    const problems = plan.problems.map((problem) => `  refused: ${problem}`);
    const others = conflictPolicies.filter((other) => other !== policy).map((other) => summarisePolicy(other, planRestore(selected, existing, other, options.rename_prefix)));
    return [[header, ...body, ...problems, `  CONFLICT=${others.join("; ")}`].join("\n")];
  }
  if (plan.problems.length) throw new Error(`nothing was changed: ${plan.problems.join("; ")}`);
  const toRestore = plan.entries.filter((entry) => entry.action !== "skip");
  const skipped = plan.entries.filter((entry) => entry.action === "skip").map((entry) => entry.index);
  if (toRestore.length === 0) return [`nothing restored from snapshot ${facts.snapshot}: ${skipped.length ? `every selected index exists and CONFLICT=${policy} skips it (${skipped.join(", ")})` : "no index selected"}`];
  const overwritten = toRestore.filter((entry) => entry.action === "overwrite").map((entry) => entry.index);
  if (overwritten.length && ctx.rescue) await keepRescueSnapshot(ctx, options, view, place, overwritten);

  const stamp = `${new Date().toISOString().replace(/[-:]/g, "").replace(/\..*$/, "").toLowerCase()}-${randomBytes(3).toString("hex")}`;
  const temporary = `composure-restore-${stamp}`;
  const location = path.posix.join(place.root, temporary);
  const started = performance.now();
  return withHelper(ctx.helperImage, ctx.project.name, [`${place.mount.source}:/repo`], async (helper, pipe) => {
    const base = path.posix.join("/repo", place.subpath);
    const unpacked = path.posix.join(base, temporary);
    // A killed restore may have left its registration and directory: the project lock says no other restore runs.
    await removeLeftoverRegistrations(view);
    const made = await helper.run(["sh", "-c", 'set -e; rm -rf "$1"/composure-restore-*; owner=$(stat -c %u:%g "$1"); mkdir -m 755 "$2"; chown "$owner" "$2"', "sh", base, unpacked]);
    if (made.exitCode !== 0) throw new Error(`cannot create ${location} on the volume ${place.displayName}: ${made.stderr.trim()}`);
    try {
      await ctx.reader.extract(artifact, helper, pipe, unpacked, `${ctx.serviceName}: unpack ${artifact.path}`);
      // Same owner as the directory composure works in: the nodes' user must read everything.
      await helper.run(["sh", "-c", 'chown -R "$(stat -c %u:%g "$1")" "$2"', "sh", base, unpacked]);
      await registerRepository(view.client, temporary, location, true);
      try {
        return await restoreFrom(ctx, options, view, temporary, facts, toRestore, skipped, policy, started);
      } finally {
        await unregisterRepository(view.client, temporary).catch((error: unknown) => log.warn(`${ctx.serviceName}: could not remove the registration of the temporary repository ${temporary}: ${(error as Error).message}`));
      }
    } finally {
      const removed = await helper.run(["rm", "-rf", "--", unpacked]);
      if (removed.exitCode !== 0) log.warn(`${ctx.serviceName}: could not remove the unpacked repository ${location}: ${removed.stderr.trim()}`);
    }
  });
}

async function restoreFrom(ctx: RestoreContext<unknown>, options: ElasticsearchOptions, view: ClusterView, repository: string, facts: SnapshotFacts, toRestore: RestoreEntry[], skipped: string[], policy: ConflictPolicy, started: number): Promise<string[]> {
  const client = view.client;
  const info = await getSnapshot(client, repository, facts.snapshot);
  if (!info) throw new Error(`the archived repository has no snapshot ${facts.snapshot}: the archive does not belong to this run`);
  const problem = snapshotProblem(info);
  if (problem) throw new Error(`the archived ${problem}`);
  const overwritten = toRestore.filter((entry) => entry.action === "overwrite").map((entry) => entry.index);
  if (overwritten.length) await call(client, "DELETE", `/${overwritten.map(seg).join(",")}`, undefined, 300_000);
  const renaming = toRestore.some((entry) => entry.action === "rename");
  const body: Record<string, unknown> = {
    indices: toRestore.map((entry) => entry.index).join(","),
    include_global_state: options.include_global_state && facts.includeGlobalState,
    // A renamed copy must not take over the live index's aliases.
    include_aliases: !renaming,
  };
  if (renaming) {
    body.rename_pattern = "^(.+)$";
    body.rename_replacement = `${options.rename_prefix}$1`;
  }
  const answer = await call<{ snapshot?: { indices?: string[]; shards?: { total: number; failed: number; successful: number } } }>(
    client,
    "POST",
    `/_snapshot/${seg(repository)}/${seg(facts.snapshot)}/_restore?wait_for_completion=true`,
    body,
    options.timeout_seconds * 1000,
  );
  const shards = answer.snapshot?.shards;
  if (shards && shards.failed > 0) throw new Error(`restoring snapshot ${facts.snapshot} failed for ${shards.failed} of ${shards.total} shards`);
  const targets = toRestore.map((entry) => entry.target);
  await waitForYellow(client, targets, Math.min(options.timeout_seconds, 600));
  const live = await indexStats(client, targets.join(","));
  const differences: string[] = [];
  for (const entry of toRestore) {
    const difference = documentDifference(facts, entry.index, live[entry.target]?.docs ?? 0, entry.target);
    if (difference) differences.push(difference);
  }
  const total = toRestore.reduce((sum, entry) => sum + (live[entry.target]?.docs ?? 0), 0);
  const summary = `restored ${toRestore.length} ind${toRestore.length === 1 ? "ex" : "ices"} (${toRestore.map((entry) => (entry.target === entry.index ? entry.index : `${entry.index} as ${entry.target}`)).join(", ")}) from snapshot ${facts.snapshot} in ${formatSeconds((performance.now() - started) / 1000)}: ${formatCount(total)} documents`;
  const skippedLine = skipped.length ? `; skipped existing ${skipped.join(", ")} (CONFLICT=${policy})` : "";
  if (differences.length) {
    if (facts.exactCounts) throw new Error(`${summary}, but the document counts differ from the snapshot's: ${differences.join("; ")}`);
    log.warn(`${ctx.serviceName}: counts differ from those recorded with the snapshot: ${differences.join("; ")}`);
    return [`${summary}${skippedLine} (counts differ from the recorded ones, which were taken under writes)`];
  }
  return [`${summary}${skippedLine}, as recorded at backup time`];
}

/** Before overwriting live indices: a snapshot of them, archived into the rescue run. */
async function keepRescueSnapshot(ctx: RestoreContext<unknown>, options: ElasticsearchOptions, view: ClusterView, place: RepositoryPlace, indices: string[]): Promise<void> {
  const stamp = `${new Date().toISOString().replace(/[-:]/g, "").replace(/\..*$/, "").toLowerCase()}-${randomBytes(3).toString("hex")}`;
  const artifact = await snapshotToArchive({
    view,
    place,
    options: { ...options, include_global_state: false },
    project: ctx.project.name,
    helperImage: ctx.helperImage,
    snapshot: `composure-rescue-${stamp}`,
    indices: indices.join(","),
    store: await ctx.rescue!.store(ctx.serviceName),
    label: `${ctx.serviceName}: rescue`,
    keep: undefined,
  });
  ctx.rescue!.add(ctx.serviceName, artifact, "elasticsearch");
  log.info(`${ctx.serviceName}: kept a rescue snapshot of ${indices.join(", ")} as ${artifact.path} of the rescue run`);
}

// Snapshot repository and snapshot calls, on any EsClient (the unit tests use a fake one).
//
// Rules the API makes necessary:
// - a failed registration (PUT _snapshot/<repo>) or verification can leave the repository
//   registered anyway: every failure deletes the registration before it is reported;
// - repositories are always verified (never verify=false), and POST _verify runs once more;
// - a snapshot can end PARTIAL or FAILED while every HTTP answer was 200: only state SUCCESS
//   with no failed shard counts, anything else is deleted and reported;
// - yellow is a normal health on a single node (replicas cannot be assigned).
import { log } from "../../log.ts";
import { call, EsError, seg, type EsClient } from "./http.ts";

export interface SnapshotInfo {
  snapshot: string;
  uuid?: string;
  state: string;
  indices: string[];
  include_global_state?: boolean;
  start_time_in_millis?: number;
  end_time_in_millis?: number;
  duration_in_millis?: number;
  failures?: { index?: string; shard_id?: number; reason?: string; node_id?: string; status?: string }[];
  shards?: { total: number; failed: number; successful: number };
  reason?: string;
}

const isMissing = (error: unknown) => error instanceof EsError && error.status === 404;

/** Deletes a repository registration (not its files); a missing one is fine. */
export async function unregisterRepository(client: EsClient, repository: string): Promise<void> {
  try {
    await call(client, "DELETE", `/_snapshot/${seg(repository)}`, undefined, 60_000);
  } catch (error) {
    if (!isMissing(error)) throw error;
  }
}

export async function isRegistered(client: EsClient, repository: string): Promise<boolean> {
  const response = await client.request("GET", `/_snapshot/${seg(repository)}`, undefined, 30_000);
  return response.status >= 200 && response.status < 300;
}

/**
 * Registers an fs repository (idempotent: the same PUT again is fine) and verifies it on every
 * node. On any failure the registration is removed, then the error is thrown with a hint.
 */
export async function registerRepository(client: EsClient, repository: string, location: string, readonly = false): Promise<void> {
  // The engine throttles snapshots and restores to 40 MB/s per node unless told otherwise ("0" lifts
  // the limit): that throttle, not the disk, was what a backup waited for.
  const settings: Record<string, unknown> = { location, max_snapshot_bytes_per_sec: "0", max_restore_bytes_per_sec: "0" };
  if (readonly) settings.readonly = true;
  try {
    await call(client, "PUT", `/_snapshot/${seg(repository)}`, { type: "fs", settings }, 120_000);
    await call(client, "POST", `/_snapshot/${seg(repository)}/_verify`, undefined, 120_000);
  } catch (error) {
    await unregisterRepository(client, repository).catch((cleanup: unknown) => log.warn(`could not remove the registration of repository ${repository} after its failure: ${(cleanup as Error).message}`));
    const message = (error as Error).message;
    const hint = /not shared|doesn't match any of the locations|path\.repo|access_denied|AccessDenied|permission/i.test(message)
      ? ": every master and data node must list the directory in path.repo and mount the same shared volume there, writable by the node's user"
      : "";
    throw new Error(`registering the snapshot repository ${repository} at ${location} failed: ${message}${hint}`);
  }
}

/** Deletes a snapshot (aborting it when it runs); a missing one is fine. */
export async function deleteSnapshot(client: EsClient, repository: string, snapshot: string): Promise<void> {
  try {
    await call(client, "DELETE", `/_snapshot/${seg(repository)}/${seg(snapshot)}`, undefined, 600_000);
  } catch (error) {
    if (!isMissing(error)) throw error;
  }
}

export async function getSnapshot(client: EsClient, repository: string, snapshot: string): Promise<SnapshotInfo | undefined> {
  try {
    const answer = await call<{ snapshots?: SnapshotInfo[] }>(client, "GET", `/_snapshot/${seg(repository)}/${seg(snapshot)}`, undefined, 60_000);
    return answer.snapshots?.[0];
  } catch (error) {
    if (isMissing(error)) return undefined;
    throw error;
  }
}

export async function listSnapshots(client: EsClient, repository: string): Promise<SnapshotInfo[]> {
  const answer = await call<{ snapshots?: SnapshotInfo[] }>(client, "GET", `/_snapshot/${seg(repository)}/_all`, undefined, 120_000);
  return answer.snapshots ?? [];
}

export interface SnapshotRequest {
  repository: string;
  snapshot: string;
  /** Multi-target expression ("a,b*,-c"); undefined: every index. */
  indices?: string;
  includeGlobalState: boolean;
  timeoutMs: number;
  pollMs?: number;
}

/** What went wrong with a finished snapshot, or undefined when it is complete. */
export function snapshotProblem(info: SnapshotInfo): string | undefined {
  const failedShards = info.shards?.failed ?? 0;
  const failures = (info.failures ?? []).map((failure) => `${failure.index ?? "?"}[${failure.shard_id ?? "?"}]: ${failure.reason ?? failure.status ?? "failed"}`);
  if (info.state === "SUCCESS" && failedShards === 0 && failures.length === 0) return undefined;
  const shards = info.shards ? `${info.shards.failed} of ${info.shards.total} shards failed` : "shards unknown";
  return `snapshot ${info.snapshot} ended ${info.state} (${shards})${info.reason ? `: ${info.reason}` : ""}${failures.length ? `; ${failures.slice(0, 5).join("; ")}${failures.length > 5 ? `; and ${failures.length - 5} more` : ""}` : ""}`;
}

/**
 * Creates a snapshot and waits for its end by polling (no HTTP request stays open for the whole
 * snapshot). Returns the snapshot only when it is SUCCESS with no failed shard; in every other
 * case (an error, PARTIAL, FAILED, a timeout) the snapshot is deleted and the error thrown.
 */
export async function takeSnapshot(client: EsClient, request: SnapshotRequest): Promise<SnapshotInfo> {
  const { repository, snapshot } = request;
  const body: Record<string, unknown> = { include_global_state: request.includeGlobalState, partial: false };
  if (request.indices) body.indices = request.indices;
  const started = Date.now();
  let polls = 0;
  try {
    await call(client, "PUT", `/_snapshot/${seg(repository)}/${seg(snapshot)}?wait_for_completion=false`, body, 120_000);
    for (;;) {
      const info = await getSnapshot(client, repository, snapshot);
      if (!info) throw new Error(`snapshot ${snapshot} disappeared from repository ${repository} while it ran`);
      if (!["IN_PROGRESS", "STARTED", "INIT"].includes(info.state)) {
        const problem = snapshotProblem(info);
        if (problem) throw new Error(problem);
        return info;
      }
      if (Date.now() - started > request.timeoutMs) throw new Error(`snapshot ${snapshot} did not finish within ${Math.round(request.timeoutMs / 1000)} s (timeout_seconds)`);
      // Small snapshots end within a second: look often at first, then every 2 s.
      await new Promise((resolve) => setTimeout(resolve, request.pollMs ?? Math.min(2000, 200 * 1.5 ** polls++)));
    }
  } catch (error) {
    // Whatever state it is in (half-written, partial, failed), the snapshot must not stay.
    await deleteSnapshot(client, repository, snapshot).catch((cleanup: unknown) => log.warn(`could not delete the failed snapshot ${snapshot}: ${(cleanup as Error).message}`));
    throw error;
  }
}

/** Snapshots that composure took for backups (rescue snapshots are not counted). */
export const backupSnapshotPattern = /^composure-\d{8}t\d{6}z(-[a-z0-9]+)?$/;

/**
 * Repository-side retention: keeps the newest `keep` backup snapshots of composure (by start
 * time) and deletes the others, oldest first. Returns the deleted names.
 */
export async function applyRetention(client: EsClient, repository: string, keep: number): Promise<string[]> {
  const ours = (await listSnapshots(client, repository))
    .filter((info) => backupSnapshotPattern.test(info.snapshot))
    .sort((a, b) => (b.start_time_in_millis ?? 0) - (a.start_time_in_millis ?? 0) || b.snapshot.localeCompare(a.snapshot));
  const deleted: string[] = [];
  for (const info of ours.slice(keep).reverse()) {
    await deleteSnapshot(client, repository, info.snapshot);
    deleted.push(info.snapshot);
  }
  return deleted;
}

export interface IndexStats {
  /** Documents in the index's primaries (Lucene documents, nested ones included). */
  docs: number;
  /** Indexing and delete operations on the primaries so far: unchanged means no writes. */
  operations: number;
  bytes: number;
}

interface StatsAnswer {
  indices?: Record<string, { primaries?: { docs?: { count?: number }; indexing?: { index_total?: number; delete_total?: number }; store?: { size_in_bytes?: number } } }>;
}

/** Per-index primary stats for `expression` (all indices, hidden ones too, when undefined). */
export async function indexStats(client: EsClient, expression?: string): Promise<Record<string, IndexStats>> {
  const target = expression ? `/${expression.split(",").map(seg).join(",")}` : "";
  const answer = await call<StatsAnswer>(
    client,
    "GET",
    `${target}/_stats/docs,indexing,store?level=indices&expand_wildcards=all&ignore_unavailable=true&filter_path=indices.*.primaries.docs.count,indices.*.primaries.indexing.index_total,indices.*.primaries.indexing.delete_total,indices.*.primaries.store.size_in_bytes`,
    undefined,
    120_000,
  );
  const stats: Record<string, IndexStats> = {};
  for (const [name, entry] of Object.entries(answer.indices ?? {})) {
    const primaries = entry.primaries ?? {};
    stats[name] = { docs: primaries.docs?.count ?? 0, operations: (primaries.indexing?.index_total ?? 0) + (primaries.indexing?.delete_total ?? 0), bytes: primaries.store?.size_in_bytes ?? 0 };
  }
  return stats;
}

/** Makes every indexed document visible to counts (a refresh; harmless, the node does it every second). */
export async function refresh(client: EsClient, expression?: string): Promise<void> {
  const target = expression ? `/${expression.split(",").map(seg).join(",")}` : "";
  await call(client, "POST", `${target}/_refresh?expand_wildcards=all&ignore_unavailable=true&allow_no_indices=true`, undefined, 300_000);
}

/** Indices of `expression` (every index when undefined) whose health is red. */
export async function redIndices(client: EsClient, expression?: string): Promise<string[]> {
  const target = expression ? `/${expression.split(",").map(seg).join(",")}` : "";
  const answer = await call<{ indices?: Record<string, { status: string }> }>(client, "GET", `/_cluster/health${target}?level=indices&expand_wildcards=all&filter_path=indices.*.status`, undefined, 60_000);
  return Object.entries(answer.indices ?? {})
    .filter(([, value]) => value.status === "red")
    .map(([name]) => name)
    .sort();
}

/** Names of every index of the cluster, hidden ones too. */
export async function listIndices(client: EsClient): Promise<string[]> {
  const rows = await call<{ index: string }[]>(client, "GET", "/_cat/indices?format=json&h=index&expand_wildcards=all", undefined, 60_000);
  return rows.map((row) => row.index).sort();
}

/** Waits until every one of `indices` is at least yellow; throws with the health when not. */
export async function waitForYellow(client: EsClient, indices: string[], timeoutSeconds: number): Promise<void> {
  if (indices.length === 0) return;
  const target = indices.map(seg).join(",");
  const response = await client.request("GET", `/_cluster/health/${target}?wait_for_status=yellow&timeout=${timeoutSeconds}s&level=indices&filter_path=status,timed_out,indices.*.status`, undefined, (timeoutSeconds + 30) * 1000);
  let answer: { status?: string; timed_out?: boolean; indices?: Record<string, { status: string }> } = {};
  try {
    answer = JSON.parse(response.body);
  } catch {
    // reported below
  }
  if (response.status === 200 && !answer.timed_out && answer.status !== "red") return;
  const red = Object.entries(answer.indices ?? {}).filter(([, value]) => value.status === "red").map(([name]) => name);
  throw new Error(`restored indices are not ready after ${timeoutSeconds} s (cluster health ${answer.status ?? `HTTP ${response.status}`}${red.length ? `; red: ${red.join(", ")}` : ""})`);
}

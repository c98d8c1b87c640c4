// The `victoriametrics` strategy (single-node VictoriaMetrics): a hot instant snapshot
// (/snapshot/create), archived from `<data_path>/snapshots/<name>` through a read-only helper
// and always deleted afterwards (/snapshot/delete, then removal of whatever is left).
//
// A VictoriaMetrics snapshot is a directory of symlinks (data/small, data/big, indexdb) into
// per-area snapshot directories of hard links to immutable parts. It is archived dereferenced
// (tar -h), so the archive holds the parts themselves and restores as a plain storage
// directory: stop the server, replace the whole -storageDataPath content (data, indexdb,
// metadata; caches, tmp and old snapshots dropped, as vmrestore leaves them), start it again.
import { z } from "zod";
import type { ServiceInfo } from "../../compose/discover.ts";
import { log } from "../../log.ts";
import type { BackupContext, Strategy } from "../types.ts";
import { describeFailure, endpoint, parseJson, withServiceNetwork, type HttpClient } from "../shared/http.ts";
import { assertPlainName, imageNamed, requireDataLocation, requireRunningContainer, runningContainer, type DataLocation } from "../shared/service-data.ts";
import { captureSnapshotDir, collectQueryFacts, notePendingSnapshot, probeTsdb, removeFromDataDir, removeLeftoverSnapshots, restoreTsdb, type QueryFacts, type TsdbFlavor } from "../shared/tsdb.ts";

const options = z
  .object({
    /** Where VictoriaMetrics answers inside its own container (the helper shares its network namespace). */
    url: z.string().url().default("http://localhost:8428"),
    /** -storageDataPath in the container. */
    data_path: z.string().regex(/^\//, "give the absolute path in the container").default("/victoria-metrics-data"),
    /** Query whose values are recorded for restore drills. */
    query: z.string().min(1).default("up"),
    /** Seconds the snapshot may take. */
    timeout: z.coerce.number().int().positive().max(86_400).default(600),
  })
  .strict();

export type VictoriaMetricsOptions = z.infer<typeof options>;

export const victoriaMetricsFlavor: TsdbFlavor = {
  product: "VictoriaMetrics",
  kind: "victoriametrics",
  readyPath: "/health",
  seriesCount: async (http, url) => {
    const response = await http.get(endpoint(url, "/api/v1/series/count"), 120_000);
    if (response.status !== 200) throw new Error(`series count failed: ${describeFailure(response)}`);
    const answer = parseJson<{ status?: string; data?: number[] }>(response, "series count");
    return Number(answer.data?.[0] ?? 0);
  },
  seriesMode: "at-least",
  readyTimeoutMs: 300_000,
};

/** victoriametrics/victoria-metrics (any tag), composure-fixture/victoriametrics ... */
export function isVictoriaMetricsImage(image: string): boolean {
  return imageNamed(image, ["victoria-metrics", "victoriametrics"]);
}

/** The per-area directories one snapshot consists of, relative to the storage path. */
export function snapshotPaths(name: string): string[] {
  return [`snapshots/${name}`, `data/small/snapshots/${name}`, `data/big/snapshots/${name}`, `indexdb/snapshots/${name}`];
}

function unreachable(service: string, url: string, detail: string): Error {
  return new Error(
    `cannot reach VictoriaMetrics of service ${service} at ${url} from inside its network namespace (${detail}): ` +
      `check that it runs and listens there (-httpListenAddr), or set composure.victoriametrics.url to the address it serves on inside its container (default http://localhost:8428)`,
  );
}

/** Fails, saying what to do, when VictoriaMetrics does not answer at `url`. */
export async function checkReachable(http: HttpClient, service: string, url: string): Promise<void> {
  const health = await http.get(endpoint(url, "/health"));
  if (health.status === 0) throw unreachable(service, url, describeFailure(health));
}

export async function createSnapshot(http: HttpClient, service: string, url: string, timeoutSeconds: number): Promise<string> {
  const response = await http.get(endpoint(url, "/snapshot/create"), timeoutSeconds * 1000);
  if (response.status === 0 && !response.error?.includes("timed out")) throw unreachable(service, url, describeFailure(response));
  if (response.status === 401 || response.status === 403) {
    throw new Error(`VictoriaMetrics of service ${service} refused /snapshot/create (${describeFailure(response)}): it runs with -snapshotAuthKey, which composure does not send; remove that flag or back the service up with composure.strategy=volume`);
  }
  if (response.status !== 200) {
    throw new Error(`VictoriaMetrics of service ${service} did not create a snapshot (${describeFailure(response)}): is ${url} single-node VictoriaMetrics (vmstorage of a cluster is not supported)? See its log (docker compose logs ${service})`);
  }
  const answer = parseJson<{ status?: string; snapshot?: string; msg?: string }>(response, `snapshot of service ${service}`);
  if (answer.status !== "ok" || !answer.snapshot) throw new Error(`VictoriaMetrics of service ${service} did not create a snapshot: ${answer.msg ?? response.body.slice(0, 200)}`);
  return assertPlainName(answer.snapshot, "snapshot name");
}

interface Prepared {
  location: DataLocation;
  snapshot: string;
  url: string;
  drill: QueryFacts;
  takenAt: string;
}

const prepared = new WeakMap<object, Prepared>();

export const victoriaMetricsStrategy: Strategy<VictoriaMetricsOptions> = {
  kind: "victoriametrics",
  options,

  detect(service: ServiceInfo) {
    return isVictoriaMetricsImage(service.image);
  },

  async prepare(ctx) {
    const { service } = ctx;
    const container = requireRunningContainer(service, "a VictoriaMetrics snapshot");
    const location = requireDataLocation(service, container, ctx.options.data_path, "composure.victoriametrics.data_path");
    const url = ctx.options.url;
    await removeLeftoverSnapshots(ctx as BackupContext<unknown>);
    const { snapshot, drill, strikeOff } = await withServiceNetwork(ctx.helperImage, ctx.project.name, container.id, async (http) => {
      await checkReachable(http, service.name, url);
      // Facts before the snapshot: every sample they name is older than it, so it is in it.
      const drill = await collectQueryFacts(http, url, ctx.options.query, Date.now() / 1000, victoriaMetricsFlavor.seriesCount);
      if (drill.error) log.warn(`${service.name}: restore-drill facts not recorded: ${drill.error}`);
      const snapshot = await createSnapshot(http, service.name, url, ctx.options.timeout);
      // Written down at once: a run killed from here on leaves it for the next run to remove.
      return { drill, snapshot, strikeOff: await notePendingSnapshot(ctx as BackupContext<unknown>, "VictoriaMetrics", location, snapshotPaths(snapshot)) };
    });
    const takenAt = new Date().toISOString();
    log.info(`${service.name}: VictoriaMetrics snapshot ${snapshot} created`);
    prepared.set(ctx, { location, snapshot, url, drill, takenAt });
    return async () => {
      await deleteSnapshot(ctx as BackupContext<unknown>, location, url, snapshot);
      await strikeOff();
    };
  },

  async capture(ctx) {
    const state = prepared.get(ctx);
    if (!state) throw new Error("capture called without prepare");
    const artifact = await captureSnapshotDir(ctx as BackupContext<unknown>, state.location, `snapshots/${state.snapshot}`, {
      dereference: true,
      artifactName: "victoriametrics-snapshot.tar.zst",
      facts: { kind: "tsdb-snapshot", product: "VictoriaMetrics", snapshot: state.snapshot, url: state.url, dataPath: state.location.containerPath, takenAt: state.takenAt, drill: state.drill },
    });
    return [artifact];
  },

  restore(ctx, artifacts) {
    return restoreTsdb(ctx, artifacts, victoriaMetricsFlavor);
  },

  probe(ctx, recorded) {
    return probeTsdb(ctx as BackupContext<unknown>, ctx.options.url, ctx.options.query, victoriaMetricsFlavor, recorded);
  },
};

/** /snapshot/delete through the server; whatever is left (server gone, call failed) is removed from the volume. */
async function deleteSnapshot(ctx: BackupContext<unknown>, location: DataLocation, url: string, snapshot: string): Promise<void> {
  const container = runningContainer(ctx.service);
  let viaApi = "";
  if (container) {
    try {
      const response = await withServiceNetwork(ctx.helperImage, ctx.project.name, container.id, (http) => http.get(endpoint(url, "/snapshot/delete", { snapshot }), 120_000));
      if (response.status !== 200) viaApi = describeFailure(response);
    } catch (error) {
      viaApi = (error as Error).message;
    }
  }
  if (viaApi) log.warn(`${ctx.service.name}: /snapshot/delete failed (${viaApi}): removing snapshot ${snapshot} from the volume`);
  await removeFromDataDir(ctx.helperImage, ctx.project.name, location, snapshotPaths(snapshot));
  log.info(`${ctx.service.name}: snapshot ${snapshot} deleted`);
}

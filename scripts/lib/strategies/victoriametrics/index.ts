// The `victoriametrics` strategy (single-node VictoriaMetrics): a hot instant snapshot
// (/snapshot/create), archived from `<data_path>/snapshots/<name>` through a read-only helper
// and always deleted afterwards (/snapshot/delete, then removal of whatever is left).
//
// A VictoriaMetrics snapshot is a directory of symlinks (data/small, data/big, indexdb) into
// per-area snapshot directories of hard links to immutable parts. It is archived dereferenced
// (tar -h), so the archive holds the parts themselves and restores as a plain storage
// directory: stop the server, replace the whole -storageDataPath content (data, indexdb,
// metadata; caches, tmp and old snapshots dropped, as vmrestore leaves them), start it again.
import { log } from "../../log.ts";
import type { BackupContext, Strategy } from "../types.ts";
import { describeFailure, endpoint, parseJson, withServiceNetwork, type HttpClient } from "../shared/http.ts";
import { assertPlainName, imageNamed, runningContainer } from "../shared/service-data.ts";
import { tsdbOptions, tsdbStrategy, type TsdbFlavor, type TsdbOptions } from "../shared/tsdb.ts";

export type VictoriaMetricsOptions = TsdbOptions;

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

export const victoriaMetricsStrategy: Strategy<VictoriaMetricsOptions> = tsdbStrategy({
  flavor: victoriaMetricsFlavor,
  /** url: where VictoriaMetrics answers inside its own container; data_path: its -storageDataPath. */
  options: tsdbOptions({ url: "http://localhost:8428", dataPath: "/victoria-metrics-data" }),
  isImage: isVictoriaMetricsImage,
  purpose: "a VictoriaMetrics snapshot",
  checkApi: checkReachable,
  takeSnapshot: createSnapshot,
  took: "created",
  snapshotPaths,
  // Its directory holds symlinks into the per-area ones: archive what they point to.
  dereference: true,
  deleteViaApi: deleteSnapshot,
});

/** /snapshot/delete through the server; whatever is left (server gone, call failed) is then removed from the volume. */
async function deleteSnapshot(ctx: BackupContext<unknown>, url: string, snapshot: string): Promise<void> {
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
}

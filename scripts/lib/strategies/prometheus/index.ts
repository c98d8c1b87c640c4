// The `prometheus` strategy: a hot TSDB snapshot through the admin API
// (POST /api/v1/admin/tsdb/snapshot, head included), archived from `<data_path>/snapshots/<name>`
// through a read-only helper and always deleted afterwards. Restore stops the service, replaces
// the TSDB directory with the snapshot's blocks (owned by the server's user, nobody in the
// official image), starts it and checks that the recorded query answers as it did.
import type { Strategy } from "../types.ts";
import { describeFailure, endpoint, parseJson, type HttpClient } from "../shared/http.ts";
import { assertPlainName, imageNamed } from "../shared/service-data.ts";
import { queryScalar, tsdbOptions, tsdbStrategy, type TsdbFlavor, type TsdbOptions } from "../shared/tsdb.ts";

export type PrometheusOptions = TsdbOptions;

const seriesQuery = 'count({__name__=~".+"})';

export const prometheusFlavor: TsdbFlavor = {
  product: "Prometheus",
  kind: "prometheus",
  readyPath: "/-/ready",
  seriesCount: (http, url, at) => queryScalar(http, url, seriesQuery, at),
  seriesMode: "equal",
  readyTimeoutMs: 300_000,
};

/** prom/prometheus, quay.io/prometheus/prometheus, bitnami/prometheus, composure-fixture/prometheus ... */
export function isPrometheusImage(image: string): boolean {
  return imageNamed(image, ["prometheus"]);
}

export function adminApiHint(service: string): string {
  return (
    `add --web.enable-admin-api to the command of service ${service} ` +
    `(a command replaces the image's default flags: keep --config.file=... and --storage.tsdb.path=...), ` +
    `then run docker compose up -d ${service}`
  );
}

function unreachable(service: string, url: string, detail: string): Error {
  return new Error(
    `cannot reach Prometheus of service ${service} at ${url} from inside its network namespace (${detail}): ` +
      `check that it runs and listens there, or set composure.prometheus.url to the address it serves on inside its container (default http://localhost:9090)`,
  );
}

/** Fails, saying what to do, when Prometheus cannot be reached or runs without its admin API. */
export async function checkAdminApi(http: HttpClient, service: string, url: string): Promise<void> {
  const flags = await http.get(endpoint(url, "/api/v1/status/flags"));
  if (flags.status === 0) throw unreachable(service, url, describeFailure(flags));
  if (flags.status === 200) {
    const answer = parseJson<{ data?: Record<string, string> }>(flags, `Prometheus of service ${service}`);
    if (answer.data?.["web.enable-admin-api"] === "false") {
      throw new Error(`Prometheus of service ${service} has its admin API disabled, so it cannot take a TSDB snapshot: ${adminApiHint(service)}`);
    }
  }
}

/** Asks for a snapshot (head included); every failure says what to do. Returns the snapshot's name. */
export async function takeSnapshot(http: HttpClient, service: string, url: string, timeoutSeconds: number): Promise<string> {
  const response = await http.post(endpoint(url, "/api/v1/admin/tsdb/snapshot", { skip_head: "false" }), "", timeoutSeconds * 1000);
  if (response.status === 0 && !response.error?.includes("timed out")) throw unreachable(service, url, describeFailure(response));
  if (response.status !== 200) {
    const adminOff = [404, 405, 500, 503].includes(response.status);
    throw new Error(
      `Prometheus of service ${service} did not take a TSDB snapshot (${describeFailure(response)})` +
        (adminOff ? `: if its admin API is off, ${adminApiHint(service)}; otherwise see its log (docker compose logs ${service})` : `: see its log (docker compose logs ${service})`),
    );
  }
  const answer = parseJson<{ status?: string; data?: { name?: string } }>(response, `snapshot of service ${service}`);
  if (answer.status !== "success" || !answer.data?.name) throw new Error(`Prometheus of service ${service} answered the snapshot request without a name: ${response.body.slice(0, 200)}`);
  return assertPlainName(answer.data.name, "snapshot name");
}

export const prometheusStrategy: Strategy<PrometheusOptions> = tsdbStrategy({
  flavor: prometheusFlavor,
  /** url: where Prometheus answers inside its own container; data_path: its --storage.tsdb.path. */
  options: tsdbOptions({ url: "http://localhost:9090", dataPath: "/prometheus" }),
  isImage: isPrometheusImage,
  purpose: "a Prometheus TSDB snapshot",
  checkApi: checkAdminApi,
  takeSnapshot,
  took: "taken",
  // One directory of plain files.
  snapshotPaths: (name) => [`snapshots/${name}`],
  dereference: false,
});

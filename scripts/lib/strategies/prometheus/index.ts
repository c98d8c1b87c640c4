// The `prometheus` strategy: a hot TSDB snapshot through the admin API
// (POST /api/v1/admin/tsdb/snapshot, head included), archived from `<data_path>/snapshots/<name>`
// through a read-only helper and always deleted afterwards. Restore stops the service, replaces
// the TSDB directory with the snapshot's blocks (owned by the server's user, nobody in the
// official image), starts it and checks that the recorded query answers as it did.
import { z } from "zod";
import type { ServiceInfo } from "../../compose/discover.ts";
import { log } from "../../log.ts";
import type { BackupContext, Strategy } from "../types.ts";
import { describeFailure, endpoint, parseJson, withServiceNetwork, type HttpClient } from "../shared/http.ts";
import { assertPlainName, imageNamed, requireDataLocation, requireRunningContainer, type DataLocation } from "../shared/service-data.ts";
import { captureSnapshotDir, collectQueryFacts, notePendingSnapshot, probeTsdb, queryScalar, removeFromDataDir, removeLeftoverSnapshots, restoreTsdb, type QueryFacts, type TsdbFlavor } from "../shared/tsdb.ts";

const options = z
  .object({
    /** Where Prometheus answers inside its own container (the helper shares its network namespace). */
    url: z.string().url().default("http://localhost:9090"),
    /** --storage.tsdb.path in the container. */
    data_path: z.string().regex(/^\//, "give the absolute path in the container").default("/prometheus"),
    /** Query whose values are recorded for restore drills. */
    query: z.string().min(1).default("up"),
    /** Seconds the snapshot may take. */
    timeout: z.coerce.number().int().positive().max(86_400).default(600),
  })
  .strict();

export type PrometheusOptions = z.infer<typeof options>;

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

interface Prepared {
  location: DataLocation;
  snapshot: string;
  url: string;
  drill: QueryFacts;
  takenAt: string;
}

const prepared = new WeakMap<object, Prepared>();

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

export const prometheusStrategy: Strategy<PrometheusOptions> = {
  kind: "prometheus",
  options,

  detect(service: ServiceInfo) {
    return isPrometheusImage(service.image);
  },

  async prepare(ctx) {
    const { service } = ctx;
    const container = requireRunningContainer(service, "a Prometheus TSDB snapshot");
    const location = requireDataLocation(service, container, ctx.options.data_path, "composure.prometheus.data_path");
    const url = ctx.options.url;
    await removeLeftoverSnapshots(ctx as BackupContext<unknown>);
    const { snapshot, drill, strikeOff } = await withServiceNetwork(ctx.helperImage, ctx.project.name, container.id, async (http) => {
      await checkAdminApi(http, service.name, url);
      // Facts before the snapshot: every sample they name is older than it, so it is in it.
      const drill = await collectQueryFacts(http, url, ctx.options.query, Date.now() / 1000, prometheusFlavor.seriesCount);
      if (drill.error) log.warn(`${service.name}: restore-drill facts not recorded: ${drill.error}`);
      const snapshot = await takeSnapshot(http, service.name, url, ctx.options.timeout);
      // Written down at once: a run killed from here on leaves it for the next run to remove.
      return { drill, snapshot, strikeOff: await notePendingSnapshot(ctx as BackupContext<unknown>, "Prometheus", location, [`snapshots/${snapshot}`]) };
    });
    const takenAt = new Date().toISOString();
    log.info(`${service.name}: Prometheus snapshot ${snapshot} taken`);
    const paths = [`snapshots/${snapshot}`];
    prepared.set(ctx, { location, snapshot, url, drill, takenAt });
    return async () => {
      await removeFromDataDir(ctx.helperImage, ctx.project.name, location, paths);
      await strikeOff();
      log.info(`${service.name}: snapshot ${snapshot} deleted`);
    };
  },

  async capture(ctx) {
    const state = prepared.get(ctx);
    if (!state) throw new Error("capture called without prepare");
    const artifact = await captureSnapshotDir(ctx as BackupContext<unknown>, state.location, `snapshots/${state.snapshot}`, {
      dereference: false,
      artifactName: "prometheus-snapshot.tar.zst",
      facts: { kind: "tsdb-snapshot", product: "Prometheus", snapshot: state.snapshot, url: state.url, dataPath: state.location.containerPath, takenAt: state.takenAt, drill: state.drill },
    });
    return [artifact];
  },

  restore(ctx, artifacts) {
    return restoreTsdb(ctx, artifacts, prometheusFlavor);
  },

  probe(ctx, recorded) {
    return probeTsdb(ctx as BackupContext<unknown>, ctx.options.url, ctx.options.query, prometheusFlavor, recorded);
  },
};

// The OpenSearch dataset: one index of about 500 MB x BENCH_SIZE (primary store), in a single node
// of the fixture image, loaded through _bulk on the API published on 127.0.0.1 only, from
// documents generated here (fixed seeds). Then composure's elasticsearch strategy (a snapshot into
// the fs repository under path.repo, the repository through the host FIFO into zstd; hot) and its
// restore (unpack, register read-only, delete and restore the index), against a raw read of the
// node's data directory.
import { duBytes, mb, measureEngineWithSlope, round, say, waitUntil, type EngineFigures, type Growth, type SlopeFigures } from "./common.ts";
import type { Composure } from "./composure.ts";
import { searchDocuments } from "./datasets.ts";
import type { BenchStack } from "./stack.ts";
import { rawRead } from "./volume.ts";

/** Documents per 500 MB of primary store, measured on the fixture (OpenSearch 2.19, about 3.3 KB each). */
export const documentsPer500Mb = 160_000;
const index = "bench";
const batch = 2000;

/**
 * No refresh while loading (one at the end); one shard per node, no replicas. Store sizes not
 * cached (10 s by default): the index is measured right after it grows.
 */
const settings = (shards: number) => ({
  settings: { number_of_shards: shards, number_of_replicas: 0, refresh_interval: "-1", "store.stats_refresh_interval": "0s" },
  mappings: { properties: { id: { type: "long" }, at: { type: "date" }, kind: { type: "keyword" }, customer: { type: "keyword" }, amount: { type: "double" }, text: { type: "text" }, payload: { type: "binary" } } },
});

interface Request {
  body?: string;
  /** The body is NDJSON (_bulk), not JSON. */
  ndjson?: boolean;
  /** Longest wait for the answer (a probe of a node that is starting gets little). */
  timeoutMs?: number;
}

/** The node's HTTP API at a host:port on 127.0.0.1: JSON in, JSON out, bounded by a time limit. */
export function api(hostPort: string) {
  if (!hostPort.startsWith("127.0.0.1:")) throw new Error(`OpenSearch is published on ${hostPort}, not on 127.0.0.1: refusing to send it data`);
  return async (method: string, apiPath: string, { body, ndjson = false, timeoutMs = 600_000 }: Request = {}): Promise<any> => {
    // A referenced timer: AbortSignal.timeout's is not, and a fetch still connecting does not keep
    // Node running either (it exits with 13, the await unsettled, while the node starts up).
    const limit = new AbortController();
    const timer = setTimeout(() => limit.abort(new Error(`${method} ${apiPath}: no answer within ${timeoutMs / 1000} s`)), timeoutMs);
    try {
      const headers = { "content-type": ndjson ? "application/x-ndjson" : "application/json" };
      const response = await fetch(`http://${hostPort}${apiPath}`, { method, body, headers, signal: limit.signal });
      const text = await response.text();
      if (!response.ok) throw new Error(`${method} ${apiPath}: HTTP ${response.status}: ${text.slice(0, 300)}`);
      return JSON.parse(text);
    } finally {
      clearTimeout(timer);
    }
  };
}

type Api = ReturnType<typeof api>;

/**
 * Creates the index (`shards`: the cluster's nodes) unless `from` is past its start, and loads
 * generated documents `from` to `from + documents - 1`; refreshed, flushed, merges done.
 */
export async function loadIndex(call: Api, documents: number, timeoutMs: number, shards = 1, from = 0): Promise<void> {
  if (from === 0) await call("PUT", `/${index}`, { body: JSON.stringify(settings(shards)) });
  else await call("PUT", `/${index}/_settings`, { body: JSON.stringify({ index: { refresh_interval: "-1" } }) });
  for (let first = from; first < from + documents; first += batch) {
    const answer = await call("POST", "/_bulk?filter_path=errors,items.*.error", { body: searchDocuments(index, first, Math.min(batch, from + documents - first)), ndjson: true });
    if (answer.errors) throw new Error(`bulk indexing failed: ${JSON.stringify(answer).slice(0, 300)}`);
  }
  await call("PUT", `/${index}/_settings`, { body: JSON.stringify({ index: { refresh_interval: null } }) });
  await call("POST", `/${index}/_refresh`);
  await call("POST", `/${index}/_flush`);
  // Background merges would compete with the measurements: let them finish first.
  await waitUntil("end of OpenSearch's merges", async () => (await call("GET", `/${index}/_stats/merge`))._all.total.merges.current === 0, timeoutMs);
}

export type OpenSearchFigures = EngineFigures & SlopeFigures;

export async function measureOpenSearch(stack: BenchStack, composure: Composure, service: string, volume: string, sizeGb: number, work: string, timeoutMs: number): Promise<OpenSearchFigures> {
  await stack.start(service);
  try {
    const call = api(await stack.published(service, 9200));
    await waitUntil("healthy OpenSearch node", async () => (await call("GET", "/_cluster/health?wait_for_status=yellow&timeout=5s", { timeoutMs: 10_000 })).timed_out === false, 300_000);
    const count = async () => (await call("GET", `/${index}/_count`)).count as number;
    const documents = Math.max(1000, Math.round(documentsPer500Mb * sizeGb));
    say(`opensearch: indexing ${documents.toLocaleString("en-US")} documents of about 4.5 KB through _bulk (half, then the rest; twice as many for the slope)`);
    const datasetBytes = async (): Promise<number> => (await call("GET", `/${index}/_stats/store`))._all.primaries.store.size_in_bytes;
    const growth: Growth = {
      grow: (more, first) => loadIndex(call, more, timeoutMs, 1, first),
      datasetBytes,
      describe: async (loadSeconds) => {
        const loaded = await count();
        if (loaded !== documents) throw new Error(`the index holds ${loaded} of ${documents} documents`);
        const [indexBytes, dataDirBytes] = [await datasetBytes(), await duBytes(await stack.mountpoint(volume))];
        say(`opensearch: index ${mb(indexBytes)} MB (data directory ${mb(dataDirBytes)} MB), loaded in ${round(loadSeconds, 1)} s`);
        const version: string = (await call("GET", "/")).version.number;
        return { engine_version: version, records: documents, dataset_bytes: indexBytes, data_dir_bytes: dataDirBytes, load_s: round(loadSeconds) };
      },
    };
    const readRaw = () => rawRead(stack.volumeName(volume), timeoutMs);
    return await measureEngineWithSlope({ composure, service, strategy: "elasticsearch", label: "opensearch", work, readRaw, count }, documents, growth);
  } finally {
    await stack.remove(service);
  }
}

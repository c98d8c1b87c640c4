// OpenSearch/Elasticsearch from the tests: HTTP through curl inside a node's container (no
// published port), readiness, bulk indexing and a content hash of an index.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { $ } from "zx";

/** One HTTP request made by curl inside the container; the body goes through stdin. */
export async function es(container: string, method: string, apiPath: string, body?: string): Promise<{ status: number; json: any; text: string }> {
  const data = body !== undefined ? ["--data-binary", "@-"] : [];
  const curl = await $({ quiet: true, nothrow: true, input: Buffer.from(body ?? "") })`docker exec -i ${container} curl -s -w ${"\n%{http_code}"} -X ${method} -H ${"Content-Type: application/json"} ${`http://localhost:9200${apiPath}`} ${data}`;
  if (curl.exitCode !== 0) throw new Error(`curl in ${container} exited with ${curl.exitCode}: ${curl.stderr}`);
  const cut = curl.stdout.lastIndexOf("\n");
  const payload = curl.stdout.slice(0, cut);
  let json: unknown;
  try {
    json = JSON.parse(payload);
  } catch {
    json = undefined;
  }
  return { status: Number(curl.stdout.slice(cut + 1)), json, text: payload };
}

export async function esOk(container: string, method: string, apiPath: string, body?: string): Promise<any> {
  const answer = await es(container, method, apiPath, body);
  if (answer.status < 200 || answer.status >= 300) throw new Error(`${method} ${apiPath}: HTTP ${answer.status}: ${answer.text.slice(0, 500)}`);
  return answer.json;
}

export async function waitForHealth(container: string, nodes: number, timeoutMs = 240_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const answer = await es(container, "GET", `/_cluster/health?wait_for_status=yellow&wait_for_nodes=${nodes}&timeout=5s`).catch(() => undefined);
    if (answer?.status === 200 && answer.json?.timed_out === false) return;
    if (Date.now() > deadline) throw new Error(`OpenSearch in ${container} did not become ready with ${nodes} node(s)`);
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
}

/** `count` deterministic documents for `index`, as one bulk body. */
export function bulkBody(index: string, from: number, count: number, variant = "v1"): string {
  const lines: string[] = [];
  for (let i = from; i < from + count; i++) {
    lines.push(JSON.stringify({ index: { _index: index, _id: `${index}-${i}` } }));
    lines.push(JSON.stringify({ n: i, kind: index, amount: (i * 37) % 1000, note: `${variant} ${index} document ${i} ${createHash("md5").update(`${index}${i}`).digest("hex")}`, tags: [`t${i % 7}`, `t${i % 11}`] }));
  }
  return `${lines.join("\n")}\n`;
}

export async function bulk(container: string, body: string): Promise<void> {
  const answer = await esOk(container, "POST", "/_bulk?filter_path=errors,items.*.error", body);
  assert.equal(answer.errors, false, `bulk indexing failed: ${JSON.stringify(answer).slice(0, 500)}`);
}

/** count:sha256 of every document (id and source), sorted by id: equal strings mean equal content. */
export async function contentHash(container: string, index: string): Promise<string> {
  const answer = await es(container, "GET", `/${index}/_search?size=10000&sort=_doc&track_total_hits=true&filter_path=hits.total,hits.hits._id,hits.hits._source`);
  if (answer.status === 404) return "missing";
  assert.equal(answer.status, 200, answer.text.slice(0, 300));
  const hits: { _id: string; _source: unknown }[] = answer.json.hits?.hits ?? [];
  assert.ok(answer.json.hits.total.value <= 10_000, "the hash reads at most 10,000 documents per index");
  const hash = createHash("sha256");
  for (const hit of [...hits].sort((a, b) => (a._id < b._id ? -1 : a._id > b._id ? 1 : 0))) hash.update(`${hit._id}\t${JSON.stringify(hit._source)}\n`);
  return `${hits.length}:${hash.digest("hex")}`;
}

// HTTP calls to a service from inside its own network namespace: a helper joins the service
// container's namespace (`--network container:<id>`) and runs busybox wget there, so
// `http://localhost:<port>` is the service itself and composure never dials a container address
// from the host. The official images of these services have no curl (VictoriaMetrics has no
// shell at all), so nothing runs inside the service container.
import { startHelper, type Helper } from "../../docker/helper.ts";

export interface HttpResponse {
  /** HTTP status, 0 when no answer came (refused, unknown host, timeout). */
  status: number;
  /** The body of a 2xx answer (busybox wget drops the body of other answers). */
  body: string;
  /** What wget said when it failed. */
  error?: string;
}

export interface HttpClient {
  get(url: string, timeoutMs?: number): Promise<HttpResponse>;
  post(url: string, data?: string, timeoutMs?: number): Promise<HttpResponse>;
}

export class UnreachableError extends Error {
  name = "UnreachableError";
}

/** Runs `work` with an HTTP client living in the network namespace of container `containerId`. */
export async function withServiceNetwork<T>(image: string, project: string, containerId: string, work: (http: HttpClient) => Promise<T>): Promise<T> {
  const helper = await startHelper({ image, project, binds: [], networkMode: `container:${containerId}` });
  try {
    return await work(httpClientOf(helper));
  } finally {
    await helper.remove();
  }
}

export function httpClientOf(helper: Helper): HttpClient {
  const request = async (url: string, data: string | undefined, timeoutMs: number): Promise<HttpResponse> => {
    const argv = ["wget", "-q", "-S", "-O", "-", ...(data === undefined ? [] : ["--post-data", data]), url];
    let result;
    try {
      result = await helper.run(argv, { timeoutMs });
    } catch (error) {
      return { status: 0, body: "", error: (error as Error).message };
    }
    return parseWgetResult(result.exitCode, result.stdout, result.stderr);
  };
  return {
    get: (url, timeoutMs = 30_000) => request(url, undefined, timeoutMs),
    post: (url, data = "", timeoutMs = 30_000) => request(url, data, timeoutMs),
  };
}

/** busybox wget -S: response headers on stderr ("  HTTP/1.1 200 OK"), errors as "wget: ...". */
export function parseWgetResult(exitCode: number, stdout: string, stderr: string): HttpResponse {
  const statuses = [...stderr.matchAll(/^\s*HTTP\/\d(?:\.\d)?\s+(\d{3})/gm)].map((match) => Number(match[1]));
  const status = statuses.at(-1) ?? 0;
  const errors = stderr
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line.startsWith("wget:"))
    .map((line) => line.replace(/^wget:\s*/, ""));
  if (exitCode === 0) return { status: status || 200, body: stdout };
  return { status, body: "", error: errors.join("; ") || `wget exited with ${exitCode}` };
}

/** Joins a base URL (maybe with a path prefix) and an API path with its query. */
export function endpoint(base: string, apiPath: string, query: Record<string, string | number> = {}): string {
  const url = new URL(base);
  url.pathname = `${url.pathname.replace(/\/+$/, "")}${apiPath}`;
  for (const [key, value] of Object.entries(query)) url.searchParams.set(key, String(value));
  return url.toString();
}

/** Parses a JSON body, failing with `what` and the start of the body. */
export function parseJson<T>(response: HttpResponse, what: string): T {
  try {
    return JSON.parse(response.body) as T;
  } catch {
    throw new Error(`${what}: the answer is not JSON: ${JSON.stringify(response.body.slice(0, 200))}`);
  }
}

export function describeFailure(response: HttpResponse): string {
  return response.status ? `HTTP ${response.status}` : (response.error ?? "no answer");
}

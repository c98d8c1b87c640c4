// Plain HTTP requests to the Elasticsearch/OpenSearch API, made by curl inside the node's own
// container (`docker exec`): composure never dials a container address from the host, and the
// URL is the node as the container sees it (http://localhost:9200 by default). Every parameter
// of curl (URL, method, body, credentials) travels in a config read from stdin (`curl -K -`):
// nothing but "curl -K -" is in any argv, so passwords never show in a process list.
import type { ContainerInfo } from "../../docker/containers.ts";
import { execCapture } from "../../docker/containers.ts";
import { environmentOf, isMissingTool } from "../shared/in-container.ts";
import type { ElasticsearchOptions } from "./options.ts";

export interface EsResponse {
  status: number;
  body: string;
}

export type Method = "GET" | "PUT" | "POST" | "DELETE" | "HEAD";

/** What the strategy needs from the API; tests give a fake one. */
export interface EsClient {
  /** Where the client talks to, for messages ("http://localhost:9200 in container x"). */
  readonly where: string;
  request(method: Method, path: string, body?: unknown, timeoutMs?: number): Promise<EsResponse>;
}

export class EsError extends Error {
  name = "EsError";
  constructor(
    message: string,
    readonly status: number,
    readonly type?: string,
  ) {
    super(message);
  }
}

export class EsUnreachableError extends Error {
  name = "EsUnreachableError";
}

/** A curl config value: double-quoted, with the escapes curl understands. */
export function curlQuote(value: string): string {
  return `"${value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n").replace(/\r/g, "\\r").replace(/\t/g, "\\t")}"`;
}

export interface CurlRequest {
  url: string;
  method: Method;
  body?: string;
  user?: string;
  password?: string;
  caFile?: string;
  timeoutSeconds: number;
}

/** The lines of `curl -K -` for one request; the status code is appended to the output. */
export function curlConfig(request: CurlRequest): string {
  const lines = ["silent", "show-error", `url = ${curlQuote(request.url)}`, `max-time = ${Math.max(1, Math.ceil(request.timeoutSeconds))}`, "connect-timeout = 10"];
  if (request.method === "HEAD") lines.push("head");
  else lines.push(`request = ${request.method}`);
  if (request.body !== undefined) {
    lines.push(`header = ${curlQuote("Content-Type: application/json")}`);
    lines.push(`data-binary = ${curlQuote(request.body)}`);
  }
  if (request.user !== undefined) lines.push(`user = ${curlQuote(`${request.user}:${request.password ?? ""}`)}`);
  if (request.caFile) lines.push(`cacert = ${curlQuote(request.caFile)}`);
  lines.push(`write-out = ${curlQuote("\n%{http_code}")}`);
  return `${lines.join("\n")}\n`;
}

/** Splits curl's output into the body and the status code that write-out appended. */
export function parseCurlOutput(stdout: string): EsResponse {
  const cut = stdout.lastIndexOf("\n");
  const status = Number(stdout.slice(cut + 1).trim());
  return { status: Number.isInteger(status) ? status : 0, body: cut >= 0 ? stdout.slice(0, cut) : "" };
}

const curlErrors: Record<number, string> = {
  6: "the host name does not resolve",
  7: "connection refused: is the node started and listening there?",
  28: "no answer in time",
  35: "TLS handshake failed",
  52: "empty reply: does the node speak https (set url to https://...)?",
  60: "the server's certificate is not trusted: set ca_file to the CA certificate inside the container",
};

export interface Credentials {
  user: string;
  password: string;
  /** Where they came from, for messages (never the values). */
  from: string;
}

/**
 * Basic-auth credentials from the options: the variables named by user_env/password_env, read in
 * the container's environment first, then in composure's own. Without options, the official
 * images' own variables (ELASTIC_PASSWORD with user elastic) when the container has them.
 */
export function credentialsFor(container: ContainerInfo, options: Pick<ElasticsearchOptions, "user_env" | "password_env">): Credentials | undefined {
  const env = environmentOf(container);
  const read = (name: string) => env.get(name) ?? process.env[name];
  if (options.password_env || options.user_env) {
    const password = options.password_env ? read(options.password_env) : undefined;
    if (options.password_env && password === undefined) throw new Error(`composure.elasticsearch.password_env names ${options.password_env}, which is set neither in the container ${container.name} nor in composure's environment`);
    const user = options.user_env ? read(options.user_env) : "elastic";
    if (user === undefined) throw new Error(`composure.elasticsearch.user_env names ${options.user_env}, which is set neither in the container ${container.name} nor in composure's environment`);
    return { user, password: password ?? "", from: [options.user_env, options.password_env].filter(Boolean).join(" and ") };
  }
  const elastic = env.get("ELASTIC_PASSWORD");
  if (elastic) return { user: "elastic", password: elastic, from: "ELASTIC_PASSWORD of the container" };
  return undefined;
}

/** A client that runs curl in `container` for every request. */
export function curlClient(container: ContainerInfo, options: ElasticsearchOptions): EsClient {
  const credentials = credentialsFor(container, options);
  const base = options.url.replace(/\/+$/, "");
  const where = `${base} in container ${container.name}`;
  return {
    where,
    async request(method, path, body, timeoutMs = 60_000) {
      const config = curlConfig({
        url: `${base}${path.startsWith("/") ? path : `/${path}`}`,
        method,
        body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
        user: credentials?.user,
        password: credentials?.password,
        caFile: options.ca_file,
        timeoutSeconds: timeoutMs / 1000,
      });
      const result = await execCapture(container.id, ["curl", "-K", "-"], { stdin: Buffer.from(config), timeoutMs: timeoutMs + 15_000 });
      if (isMissingTool(result)) {
        throw new Error(`curl is not in the image ${container.image}: the elasticsearch strategy calls the API with curl inside the node's container (the official Elasticsearch and OpenSearch images have it)`);
      }
      if (result.exitCode !== 0) {
        const cause = curlErrors[result.exitCode] ?? (result.stderr.trim() || `curl exited with ${result.exitCode}`);
        throw new EsUnreachableError(`no answer from ${where}: ${cause}`);
      }
      const response = parseCurlOutput(result.stdout);
      if (response.status === 401) throw new EsError(`${where} answered 401 Unauthorized: ${credentials ? `check the credentials from ${credentials.from}` : "set composure.elasticsearch.user_env and password_env"}`, 401, "security_exception");
      return response;
    },
  };
}

interface ErrorCause {
  type?: string;
  reason?: string;
  caused_by?: ErrorCause;
  root_cause?: ErrorCause[];
}

/** The reasons of an Elasticsearch error body, outermost first with its causes, or the start of the body. */
export function reasonOf(response: EsResponse): { reason: string; type?: string } {
  try {
    const parsed = JSON.parse(response.body) as { error?: ErrorCause | string };
    if (typeof parsed.error === "string") return { reason: parsed.error };
    if (parsed.error) {
      const reasons: string[] = [];
      for (let cause: ErrorCause | undefined = parsed.error; cause; cause = cause.caused_by) {
        // The innermost causes are often bare exceptions (access_denied_exception: <path>): keep their type.
        const text = cause.reason ? (cause === parsed.error || !cause.type || cause.type === "exception" ? cause.reason : `${cause.type}: ${cause.reason}`) : cause.type;
        if (text && !reasons.includes(text)) reasons.push(text);
      }
      const root = parsed.error.root_cause?.[0]?.reason;
      if (root && !reasons.includes(root)) reasons.push(root);
      return { reason: reasons.join(": ") || response.body.slice(0, 300), type: parsed.error.type };
    }
  } catch {
    // not JSON
  }
  return { reason: response.body.trim().slice(0, 300) || "no body" };
}

/** Sends a request and returns its JSON answer; a non-2xx answer becomes an EsError with the reason. */
export async function call<T>(client: EsClient, method: Method, path: string, body?: unknown, timeoutMs?: number): Promise<T> {
  const response = await client.request(method, path, body, timeoutMs);
  if (response.status < 200 || response.status >= 300) {
    const { reason, type } = reasonOf(response);
    throw new EsError(`${method} ${path.split("?")[0]} answered HTTP ${response.status}: ${reason}`, response.status, type);
  }
  if (!response.body.trim()) return {} as T;
  try {
    return JSON.parse(response.body) as T;
  } catch {
    throw new Error(`${method} ${path.split("?")[0]}: the answer is not JSON: ${JSON.stringify(response.body.slice(0, 200))}`);
  }
}

/** An index, repository or snapshot name in a URL path. */
export const seg = (name: string) => encodeURIComponent(name);

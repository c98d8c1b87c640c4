// The ONLY module family that imports dockerode. Everything else sees plain objects.
import Docker from "dockerode";
import { messageOf } from "../errors.ts";
import { log } from "../log.ts";

let engine: Docker | undefined;

export function getEngine(): Docker {
  engine ??= new Docker(); // honours DOCKER_HOST, DOCKER_CERT_PATH, DOCKER_TLS_VERIFY
  return engine;
}

/**
 * True when the engine runs on this host (unix socket, no DOCKER_HOST elsewhere): then host
 * paths such as FIFOs can be bind-mounted into helpers. Against a remote engine only API
 * streams work.
 */
export function isLocalEngine(): boolean {
  const host = process.env.DOCKER_HOST;
  return !host || host.startsWith("unix://");
}

const engineAddress = () => process.env.DOCKER_HOST || "/var/run/docker.sock";

export async function checkEngine(): Promise<void> {
  try {
    await getEngine().ping();
  } catch (error) {
    const where = engineAddress();
    throw new Error(
      `cannot reach the Docker engine at ${where} (${(error as Error).message}): start dockerd, or set DOCKER_HOST`,
    );
  }
}

/**
 * True when `error` says the engine did not answer at all (dockerd stopped or restarting: its
 * socket is gone or refuses connections), as opposed to the engine refusing a request.
 */
export function isEngineUnavailable(error: unknown): boolean {
  const { code, syscall, address } = (error ?? {}) as NodeJS.ErrnoException & { address?: string };
  if (syscall !== "connect" || !["ENOENT", "ECONNREFUSED"].includes(code ?? "")) return false;
  const host = process.env.DOCKER_HOST;
  const socket = !host ? "/var/run/docker.sock" : host.startsWith("unix://") ? host.slice("unix://".length) : undefined;
  return socket === undefined || address === socket; // a local ENOENT must be about the socket, not a file
}

/** An error's message, or for a lost engine what happened and what to do about it. */
export function describeEngineError(error: unknown): string {
  if (!isEngineUnavailable(error)) return messageOf(error);
  return `lost the connection to the Docker engine at ${engineAddress()} (${messageOf(error)}): dockerd stopped or restarted during the run. Check that it runs (systemctl status docker), then run the command again: the next composure command restarts whatever is still stopped`;
}

/**
 * Runs `work`; while the engine does not answer, tries again every second for up to
 * `patienceMs`. For undo steps (restarting a stopped service) that must not give up on a daemon
 * that is back a few seconds later. Captures never wait: a daemon that restarted may have
 * started containers on its own, so what they would copy could be inconsistent.
 */
export async function retryWhileEngineUnavailable<T>(what: string, work: () => Promise<T>, patienceMs = 60_000): Promise<T> {
  const deadline = Date.now() + patienceMs;
  let warned = false;
  for (;;) {
    try {
      return await work();
    } catch (error) {
      // A daemon that was away answers 500 for a moment while it starts up (its network store is not open yet).
      const comingBack = warned && (error as { statusCode?: number }).statusCode === 500;
      if ((!isEngineUnavailable(error) && !comingBack) || Date.now() >= deadline) throw error;
      if (!warned) log.warn(`the Docker engine at ${engineAddress()} is not answering: retrying to ${what} for up to ${patienceMs / 1000} s`);
      warned = true;
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }
}

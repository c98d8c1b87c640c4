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

/** How long the engine may take to answer a ping before composure calls it hung. */
export const engineAnswerTimeoutMs = 10_000;

/** Where the engine is and where that came from, for messages: `unix:///x.sock (DOCKER_HOST)`. */
export function engineWhere(): string {
  return process.env.DOCKER_HOST ? `${process.env.DOCKER_HOST} (DOCKER_HOST)` : "unix:///var/run/docker.sock (DOCKER_HOST unset)";
}

/** What to do about an engine that does not answer: set this machine up, or fix DOCKER_HOST. */
export function engineAdvice(): string {
  const local = !process.env.DOCKER_HOST || process.env.DOCKER_HOST === "unix:///var/run/docker.sock";
  return local
    ? "start dockerd: as root, `bash scripts/setup.sh` in the composure checkout installs and starts it (or `systemctl start docker`); or set DOCKER_HOST to an engine that runs"
    : "start the engine DOCKER_HOST names, or point DOCKER_HOST at one that runs (unset it for this machine's dockerd, which `bash scripts/setup.sh` starts as root)";
}

/**
 * Fails fast, with what to do, when no engine answers: no socket, a socket nobody serves, no
 * permission, or a daemon that accepts the connection and never answers (the ping is abandoned
 * after `timeoutMs`, so a hung daemon cannot hang the command).
 */
export async function checkEngine(timeoutMs = engineAnswerTimeoutMs): Promise<void> {
  try {
    // dockerode's ping takes an abortSignal; its typings do not say so
    const engine = getEngine() as unknown as { ping(options: { abortSignal: AbortSignal }): Promise<unknown> };
    await engine.ping({ abortSignal: AbortSignal.timeout(timeoutMs) });
  } catch (error) {
    const { code, name } = (error ?? {}) as NodeJS.ErrnoException;
    if (name === "AbortError" || name === "TimeoutError" || code === "ABORT_ERR") {
      throw new Error(
        `the Docker engine at ${engineWhere()} accepted the connection but did not answer within ${timeoutMs / 1000} s: dockerd is hung or still starting. Check it (systemctl status docker, or its log), or ${engineAdvice()}`,
      );
    }
    if (code === "EACCES") {
      throw new Error(
        `cannot reach the Docker engine at ${engineWhere()} (${messageOf(error)}): no permission on its socket. Run as root, or join the docker group (sudo usermod -aG docker $USER, then log in again)`,
      );
    }
    throw new Error(`cannot reach the Docker engine at ${engineWhere()} (${messageOf(error)}): ${engineAdvice()}`);
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

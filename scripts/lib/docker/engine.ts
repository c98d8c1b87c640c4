// The ONLY module family that imports dockerode. Everything else sees plain objects.
import Docker from "dockerode";

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

export async function checkEngine(): Promise<void> {
  try {
    await getEngine().ping();
  } catch (error) {
    const where = process.env.DOCKER_HOST || "/var/run/docker.sock";
    throw new Error(
      `cannot reach the Docker engine at ${where} (${(error as Error).message}): start dockerd, or set DOCKER_HOST`,
    );
  }
}

// redis-cli inside the service container (the official images have it), with the password in
// the exec's environment (REDISCLI_AUTH), never in an argv. Replies are read in redis-cli's raw
// mode (what it prints when its output is not a terminal).
import { execCapture } from "../../docker/containers.ts";

export class RedisError extends Error {
  name = "RedisError";
}

export interface RedisTarget {
  containerId: string;
  service: string;
  port: number;
  /** "REDISCLI_AUTH=..." when a password is known, else empty. */
  env: string[];
  /** Where the password came from, for messages ("REDIS_PASSWORD of the container"). */
  passwordSource?: string;
  passwordEnv: string;
}

const errorReply = /^(NOAUTH|WRONGPASS|NOPERM|ERR|WRONGTYPE|LOADING|BUSY|MISCONF|READONLY|NOSCRIPT|EXECABORT|MASTERDOWN)\b/;

/** The password from the container's own environment (variable `passwordEnv`), as an exec env. */
export function redisTarget(service: string, container: { id: string; env: string[] }, port: number, passwordEnv: string): RedisTarget {
  const entry = container.env.find((item) => item.startsWith(`${passwordEnv}=`));
  const password = entry?.slice(passwordEnv.length + 1);
  return {
    containerId: container.id,
    service,
    port,
    env: password ? [`REDISCLI_AUTH=${password}`] : [],
    passwordSource: password ? `${passwordEnv} of the container` : undefined,
    passwordEnv,
  };
}

function authHint(target: RedisTarget): string {
  return target.passwordSource
    ? `the password in ${target.passwordSource} is not accepted: fix it, or set composure.redis.password_env to the variable of the container that holds the right one`
    : `Redis of service ${target.service} wants a password: put it in the container's environment as ${target.passwordEnv}, or set composure.redis.password_env to the variable of the container that holds it`;
}

/** Runs redis-cli with `args` (or the command lines of `script` on stdin, one connection); returns raw stdout. */
export async function redisCli(target: RedisTarget, args: string[], options: { script?: string[]; timeoutMs?: number } = {}): Promise<string> {
  const argv = ["redis-cli", "-h", "127.0.0.1", "-p", String(target.port), ...args];
  let result;
  try {
    result = await execCapture(target.containerId, argv, {
      env: target.env,
      timeoutMs: options.timeoutMs ?? 60_000,
      stdin: options.script ? Buffer.from(`${options.script.join("\n")}\n`) : undefined,
    });
  } catch (error) {
    throw new RedisError(`redis-cli in service ${target.service} failed: ${(error as Error).message}`);
  }
  const stdout = result.stdout.replace(/\r/g, "");
  const stderr = result.stderr.trim();
  if (result.exitCode === 126 || result.exitCode === 127) {
    throw new RedisError(`service ${target.service} has no redis-cli (exit ${result.exitCode}): the redis strategy needs an image that ships it (the official redis and bitnami/redis images do)`);
  }
  if (/AUTH failed|WRONGPASS/.test(stderr) || /^(NOAUTH|WRONGPASS)/m.test(stdout)) throw new RedisError(authHint(target));
  if (/Could not connect|Connection refused/i.test(stderr + stdout)) {
    throw new RedisError(`redis-cli cannot connect to 127.0.0.1:${target.port} in service ${target.service}: ${(stderr || stdout).trim()} (set composure.redis.port if Redis listens elsewhere)`);
  }
  if (result.exitCode !== 0) throw new RedisError(`redis-cli ${args.join(" ")} in service ${target.service} exited with ${result.exitCode}: ${stderr || stdout.trim()}`);
  if (!options.script) {
    const first = stdout.split("\n")[0] ?? "";
    if (errorReply.test(first)) throw new RedisError(`Redis of service ${target.service} answered ${args.join(" ")} with: ${first.trim()}`);
  }
  return stdout;
}

/** INFO text -> field map ("# Section" headers and blank lines dropped). */
export function parseInfo(text: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const line of text.replace(/\r/g, "").split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const colon = line.indexOf(":");
    if (colon > 0) fields[line.slice(0, colon)] = line.slice(colon + 1);
  }
  return fields;
}

export interface Keyspace {
  [db: string]: { keys: number; expires: number };
}

/** "db0:keys=3,expires=0,avg_ttl=0" lines -> { db0: { keys: 3, expires: 0 } }. */
export function parseKeyspace(text: string): Keyspace {
  const keyspace: Keyspace = {};
  for (const match of text.matchAll(/^(db\d+):keys=(\d+),expires=(\d+)/gm)) keyspace[match[1]] = { keys: Number(match[2]), expires: Number(match[3]) };
  return keyspace;
}

export const totalKeys = (keyspace: Keyspace) => Object.values(keyspace).reduce((sum, db) => sum + db.keys, 0);
export const totalExpires = (keyspace: Keyspace) => Object.values(keyspace).reduce((sum, db) => sum + db.expires, 0);

/** CONFIG GET output (raw mode: names and values on alternate lines) -> map. */
export function parseConfigGet(text: string): Record<string, string> {
  const lines = text.replace(/\r/g, "").split("\n");
  if (lines.at(-1) === "") lines.pop();
  const config: Record<string, string> = {};
  for (let index = 0; index + 1 < lines.length; index += 2) config[lines[index]] = lines[index + 1];
  return config;
}

/**
 * What a restore must find: per database, the recorded number of keys; with expiring keys, any
 * number between the keys that cannot have expired and the recorded count.
 */
export function compareKeyspaces(recorded: Keyspace, current: Keyspace): string[] {
  const problems: string[] = [];
  for (const db of new Set([...Object.keys(recorded), ...Object.keys(current)])) {
    const want = recorded[db] ?? { keys: 0, expires: 0 };
    const have = current[db]?.keys ?? 0;
    const low = want.keys - want.expires;
    if (want.expires === 0 ? have !== want.keys : have < low || have > want.keys) {
      problems.push(`${db} has ${have} keys instead of ${want.expires === 0 ? want.keys : `${low}..${want.keys} (${want.expires} may have expired)`}`);
    }
  }
  return problems;
}

/**
 * The reply to BGSAVE in the output of the pipeline CLIENT PAUSE / INFO keyspace / BGSAVE /
 * CLIENT UNPAUSE: the last line between the first and the last reply that is not INFO text.
 */
export function bgsaveReply(output: string): string | undefined {
  const lines = output.replace(/\r/g, "").split("\n").filter((line) => line !== "");
  return lines
    .slice(1, -1)
    .filter((line) => !line.startsWith("#") && !/^db\d+:/.test(line))
    .at(-1);
}

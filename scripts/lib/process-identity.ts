// Which process this is, in a form other processes can check later: a lock holder, a helper's or
// a drill's owner, a pipe folder's creator. Gone means: same host, and the pid is dead or reused.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import os from "node:os";

/** The fields of /proc/<pid>/stat after the command name (state first), or undefined when there is no such process. */
function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  } catch {
    return undefined;
  }
}

export function startTicksOf(pid: number): string {
  return statFields(pid)?.[19] ?? "";
}

/**
 * True when process `pid` of this host has ended: no such process, one that waits to be reaped (a
 * zombie: where PID 1 does not reap orphans, a killed run stays one), or, given the start ticks
 * it had, another process that reused the pid.
 */
export function pidHasEnded(pid: number, startTicks?: string): boolean {
  const fields = statFields(pid);
  return fields === undefined || fields[0] === "Z" || (startTicks !== undefined && fields[19] !== startTicks);
}

/** "host|pid|start ticks": names this process so that others can tell when it is gone. */
export function processIdentity(): string {
  return `${os.hostname()}|${process.pid}|${startTicksOf(process.pid)}`;
}

/** True when the process is known to be gone (same host, pid dead or reused); false when unknown. */
export function processIsGone(owner: { host: string; pid: number; startTicks: string } | string): boolean {
  const parsed = typeof owner === "string" ? parseIdentity(owner) : owner;
  if (!parsed || parsed.host !== os.hostname()) return false; // cannot tell from here: wait for it
  return pidHasEnded(parsed.pid, parsed.startTicks);
}

/**
 * This process as a host name (a helper container's): what restic writes into its locks there,
 * so that a later command can tell the lock of a killed run from one of a live run.
 */
export function processHostname(): string {
  return `composure-${hostTag()}-${process.pid}-${startTicksOf(process.pid)}`;
}

/** True when `hostname` is a processHostname() of this host whose process is gone. */
export function hostnameProcessIsGone(hostname: string): boolean {
  const match = /^composure-([0-9a-f]{8})-(\d+)-(\d+)$/.exec(hostname);
  return match !== null && match[1] === hostTag() && pidHasEnded(Number(match[2]), match[3]);
}

const hostTag = () => createHash("sha256").update(os.hostname()).digest("hex").slice(0, 8);

function parseIdentity(identity: string): { host: string; pid: number; startTicks: string } | undefined {
  const [host, pid, startTicks] = identity.split("|");
  return host && pid && startTicks !== undefined ? { host, pid: Number(pid), startTicks } : undefined;
}

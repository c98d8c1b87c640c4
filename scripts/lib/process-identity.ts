// Which process this is, in a form other processes can check later: a lock holder, a helper's or
// a drill's owner, a pipe folder's creator. Gone means: same host, and the pid is dead or reused.
import { readFileSync } from "node:fs";
import os from "node:os";

export function startTicksOf(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19] ?? "";
  } catch {
    return "";
  }
}

/** "host|pid|start ticks": names this process so that others can tell when it is gone. */
export function processIdentity(): string {
  return `${os.hostname()}|${process.pid}|${startTicksOf(process.pid)}`;
}

/** True when the process is known to be gone (same host, pid dead or reused); false when unknown. */
export function processIsGone(owner: { host: string; pid: number; startTicks: string } | string): boolean {
  const parsed = typeof owner === "string" ? parseIdentity(owner) : owner;
  if (!parsed || parsed.host !== os.hostname()) return false; // cannot tell from here: wait for it
  return startTicksOf(parsed.pid) !== parsed.startTicks;
}

function parseIdentity(identity: string): { host: string; pid: number; startTicks: string } | undefined {
  const [host, pid, startTicks] = identity.split("|");
  return host && pid && startTicks !== undefined ? { host, pid: Number(pid), startTicks } : undefined;
}

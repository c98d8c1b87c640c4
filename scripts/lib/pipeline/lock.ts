// One run at a time per project: a lock file created with O_EXCL. A second run waits up to the
// timeout, then fails naming the holder. A lock whose holder died (same host, process gone or
// its pid reused by another process) is stale and taken over.
import { mkdir, open, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { LockError } from "../errors.ts";
import { log } from "../log.ts";
import { processIsGone, startTicksOf } from "../process-identity.ts";

interface Holder {
  pid: number;
  host: string;
  /** Kernel start time of the holder process, to tell a reused pid apart. */
  startTicks: string;
  command: string;
  since: string;
}

function isStale(holder: Holder): boolean {
  return processIsGone(holder);
}

async function readHolder(file: string): Promise<Holder | undefined> {
  try {
    return JSON.parse(await readFile(file, "utf8")) as Holder;
  } catch {
    return undefined; // vanished, or half-written by a process killed while writing it
  }
}

export type Unlock = () => Promise<void>;

export async function acquireLock(projectDir: string, command: string, timeoutSeconds: number): Promise<Unlock> {
  await mkdir(projectDir, { recursive: true, mode: 0o700 });
  const file = path.join(projectDir, ".lock");
  const me: Holder = { pid: process.pid, host: os.hostname(), startTicks: startTicksOf(process.pid), command, since: new Date().toISOString() };
  const deadline = Date.now() + timeoutSeconds * 1000;
  let announced = false;
  for (;;) {
    try {
      const handle = await open(file, "wx", 0o600);
      await handle.writeFile(JSON.stringify(me));
      await handle.close();
      return async () => {
        const holder = await readHolder(file);
        if (holder?.pid === me.pid && holder.startTicks === me.startTicks) await rm(file, { force: true });
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
    const holder = await readHolder(file);
    if (!holder || isStale(holder)) {
      const holderText = holder ? `pid ${holder.pid} (${holder.command}, since ${holder.since})` : "an unreadable lock file";
      log.warn(`taking over a stale lock left by ${holderText}`);
      await rm(file, { force: true });
      continue;
    }
    const description = `pid ${holder.pid} on ${holder.host} (${holder.command}, since ${holder.since})`;
    if (Date.now() >= deadline) {
      throw new LockError(`project is locked by ${description}; waited ${timeoutSeconds} s. Try again later, or raise lock.timeout_seconds / LOCK_TIMEOUT`);
    }
    if (!announced) log.info(`waiting for the lock held by ${description} (up to ${timeoutSeconds} s)`);
    announced = true;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

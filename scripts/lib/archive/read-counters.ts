// How far a program has read its input, from Linux's /proc (a process's own files there need no
// privilege). The archive engine's compressors and decompressors open their FIFO or file
// themselves, so those bytes never pass through Node; progress lines count them here instead.
// Without /proc the counters answer undefined, and a progress line shows the elapsed time.
import { readFileSync, readdirSync, readlinkSync, realpathSync } from "node:fs";

/** A count of bytes read so far; undefined when it cannot be read (any more). */
export type ReadCounter = () => number | undefined;

/** Bytes `pid` (all its threads) has had from read calls, whatever the file. */
function bytesReadBy(pid: number): number | undefined {
  try {
    const match = /^rchar:\s*(\d+)$/m.exec(readFileSync(`/proc/${pid}/io`, "utf8"));
    return match ? Number(match[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** The descriptor by which `pid` has `file` (a real path) open. */
function descriptorOf(pid: number, file: string): string | undefined {
  try {
    return readdirSync(`/proc/${pid}/fd`).find((fd) => {
      try {
        return readlinkSync(`/proc/${pid}/fd/${fd}`) === file;
      } catch {
        return false; // closed meanwhile
      }
    });
  } catch {
    return undefined;
  }
}

const realPath = (file: string) => {
  try {
    return realpathSync(file);
  } catch {
    return file;
  }
};

/**
 * Bytes `pid` has read from the FIFO `fifo`: everything it read, less what it read before it
 * opened the FIFO (its start-up: libraries, /proc/cpuinfo). Until then it is asked every 10 ms:
 * the writer opens the FIFO tens of milliseconds after the reader starts (a docker exec). A
 * pipe has no read position, hence the total.
 */
export function fifoReadCounter(pid: number, fifo: string): ReadCounter {
  const file = realPath(fifo);
  let startup = 0;
  let opened = false;
  const look = () => {
    const read = bytesReadBy(pid); // before the descriptor: a read counted here came before the open
    if (read === undefined) return undefined;
    if (!opened && descriptorOf(pid, file) === undefined) startup = read;
    else opened = true;
    return opened ? read - startup : 0;
  };
  const watch = setInterval(() => {
    if (look() === undefined || opened) clearInterval(watch);
  }, 10).unref();
  look();
  return look;
}

/** The read position of `pid` in `file` (which it opened itself), from its descriptor's fdinfo. */
export function fileReadCounter(pid: number, file: string): ReadCounter {
  const real = realPath(file);
  let fd: string | undefined;
  return () => {
    fd ??= descriptorOf(pid, real);
    if (fd === undefined) return undefined;
    try {
      const match = /^pos:\s*(\d+)$/m.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, "utf8"));
      return match ? Number(match[1]) : undefined;
    } catch {
      return undefined; // the program ended
    }
  };
}

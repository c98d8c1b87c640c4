// The host side of a helper's FIFO: a folder holding one FIFO, bind-mounted into the helper at
// /pipe, so tar in the helper and zstd on the host meet without a logged stream in between.
import { closeSync, constants, openSync } from "node:fs";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { processIsGone, startTicksOf } from "../process-identity.ts";
import { run } from "../shell.ts";

/** A host directory holding one FIFO, bind-mounted into helpers at /pipe. */
export interface PipeDir {
  dir: string;
  fifo: string;
  bind: string;
  remove(): Promise<void>;
}

/** Pipe folders are named after their process (pid and start time), so leftovers can be told apart. */
const pipeDirName = /^composure-pipe-(\d+)\.(\d+)-/;

export async function createPipeDir(): Promise<PipeDir> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `composure-pipe-${process.pid}.${startTicksOf(process.pid)}-`));
  const fifo = path.join(dir, "stream");
  await makeFifo(fifo);
  return { dir, fifo, bind: `${dir}:/pipe`, remove: () => removePipeDir(dir) };
}

/** A FIFO only this user can open. */
export const makeFifo = (fifo: string) => run("mkfifo", ["-m", "600", fifo]);

/**
 * Releases whoever still waits to open the FIFO (a zstd whose tar never came: a run ended by a
 * signal or an error before the transfer), then removes the folder.
 */
async function removePipeDir(dir: string): Promise<void> {
  const fifo = path.join(dir, "stream");
  unblockFifoReader(fifo);
  unblockFifoWriter(fifo);
  await rm(dir, { recursive: true, force: true });
}

/**
 * Removes the pipe folders of composure processes that were killed (SIGKILL), releasing a zstd
 * still waiting to open the FIFO (it then ends on an empty stream). Returns how many.
 */
export async function removeAbandonedPipeDirs(): Promise<number> {
  const names = (await readdir(os.tmpdir()).catch(() => [] as string[])).filter((name) => {
    const owner = pipeDirName.exec(name);
    return owner && processIsGone({ host: os.hostname(), pid: Number(owner[1]), startTicks: owner[2] });
  });
  for (const name of names) await removePipeDir(path.join(os.tmpdir(), name));
  return names.length;
}

/** A FIFO reader blocked in open() (zstd) is released by a writer that opens and closes. */
export function unblockFifoReader(fifo: string): void {
  try {
    closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK));
  } catch {
    // no reader waiting: nothing to release
  }
}

/** A FIFO writer blocked in open() (us) is released by a reader that opens and closes. */
export function unblockFifoWriter(fifo: string): void {
  try {
    closeSync(openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK));
  } catch {
    // nothing to release
  }
}

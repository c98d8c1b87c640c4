// The journal of containers composure stopped. Written before each stop and cleared after each
// start, so that a run killed half-way leaves a list the next composure command restarts.
import { existsSync } from "node:fs";
import { readFile, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { isRunning, startContainer } from "../docker/containers.ts";
import { log } from "../log.ts";

interface StoppedContainer {
  id: string;
  name: string;
}

export class StopJournal {
  private readonly file: string;
  private entries: StoppedContainer[] = [];
  private writing: Promise<void> = Promise.resolve();

  constructor(projectDir: string) {
    this.file = path.join(projectDir, ".stopped.json");
  }

  /** Restarts whatever a killed run left stopped. Call while holding the project lock. */
  async recover(): Promise<string[]> {
    if (!existsSync(this.file)) return [];
    let leftovers: StoppedContainer[] = [];
    try {
      leftovers = JSON.parse(await readFile(this.file, "utf8")) as StoppedContainer[];
    } catch {
      log.warn(`ignoring an unreadable journal ${this.file}`);
    }
    const restarted: string[] = [];
    for (const container of leftovers.reverse()) {
      if (await isRunning(container.id)) continue;
      try {
        await startContainer(container.id);
        restarted.push(container.name);
      } catch (error) {
        log.warn(`could not restart ${container.name} left stopped by an interrupted run: ${(error as Error).message}`);
      }
    }
    if (restarted.length) log.warn(`restarted containers an interrupted run had stopped: ${restarted.join(", ")}`);
    await rm(this.file, { force: true });
    return restarted;
  }

  add(container: StoppedContainer): Promise<void> {
    this.entries.push(container);
    return this.save();
  }

  remove(id: string): Promise<void> {
    this.entries = this.entries.filter((entry) => entry.id !== id);
    return this.save();
  }

  private save(): Promise<void> {
    const snapshot = JSON.stringify(this.entries);
    const empty = this.entries.length === 0;
    this.writing = this.writing.then(async () => {
      if (empty) return rm(this.file, { force: true });
      await writeFile(`${this.file}.tmp`, snapshot, { mode: 0o600 });
      await rename(`${this.file}.tmp`, this.file);
    });
    return this.writing;
  }
}

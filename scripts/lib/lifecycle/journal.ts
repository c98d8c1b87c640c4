// The journal of what a run changed and must undo: containers composure stopped, and volumes
// holding a half-extracted restore staging folder. Each entry is written before the change and
// cleared after its undo, so a run killed half-way leaves a list the next composure command
// (backup, restore, prune) works off: it restarts the containers and removes the staging folders.
import { existsSync } from "node:fs";
import { readFile, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { isRunning, startContainer } from "../docker/containers.ts";
import { log } from "../log.ts";

interface StoppedContainer {
  id: string;
  name: string;
}

export interface Staging {
  /** Volume name (or bind path) with a restore staging folder in it (or beside it). */
  volume: string;
  /** The volume root's mtime before the staging folder was made, to put back. */
  rootMtime: string;
  /** A restore staging beside the volume's _data: the engine's folder of the volume on the host. */
  beside?: string;
  /** Beside: the name _data gets when the restored folder takes its place. */
  old?: string;
}

interface JournalFile {
  stopped: StoppedContainer[];
  staging: Staging[];
}

/** Removes a staging folder from a volume (needs a helper container: supplied by the caller). */
export type StagingCleaner = (staging: Staging) => Promise<void>;

export class StopJournal {
  private readonly file: string;
  private state: JournalFile = { stopped: [], staging: [] };
  private writing: Promise<void> = Promise.resolve();

  constructor(projectDir: string) {
    this.file = path.join(projectDir, ".stopped.json");
  }

  /** Undoes whatever a killed run left behind. Call while holding the project lock. */
  async recover(cleanStaging?: StagingCleaner): Promise<string[]> {
    if (!existsSync(this.file)) return [];
    const leftovers = await this.read();
    // Staging first: a restore killed between its two renames must put _data back before a start.
    const pending: Staging[] = [];
    for (const staging of leftovers.staging) {
      if (!cleanStaging) {
        pending.push(staging);
        continue;
      }
      try {
        await cleanStaging(staging);
        log.warn(`removed the staging folder an interrupted restore left in ${staging.volume}`);
      } catch (error) {
        log.warn(`${(error as Error).message} (kept in the journal: the next composure command tries again)`);
        pending.push(staging);
      }
    }
    const restarted: string[] = [];
    for (const container of [...leftovers.stopped].reverse()) {
      if (await isRunning(container.id)) continue;
      try {
        await startContainer(container.id);
        restarted.push(container.name);
      } catch (error) {
        log.warn(`could not restart ${container.name} left stopped by an interrupted run: ${(error as Error).message}`);
      }
    }
    if (restarted.length) log.warn(`restarted containers an interrupted run had stopped: ${restarted.join(", ")}`);
    this.state = { stopped: [], staging: pending };
    await this.save();
    return restarted;
  }

  private async read(): Promise<JournalFile> {
    try {
      const parsed = JSON.parse(await readFile(this.file, "utf8")) as JournalFile | StoppedContainer[];
      return Array.isArray(parsed) ? { stopped: parsed, staging: [] } : { stopped: parsed.stopped ?? [], staging: parsed.staging ?? [] };
    } catch {
      log.warn(`ignoring an unreadable journal ${this.file}`);
      return { stopped: [], staging: [] };
    }
  }

  add(container: StoppedContainer): Promise<void> {
    this.state.stopped.push(container);
    return this.save();
  }

  remove(id: string): Promise<void> {
    this.state.stopped = this.state.stopped.filter((entry) => entry.id !== id);
    return this.save();
  }

  addStaging(entry: Staging): Promise<void> {
    this.state.staging.push(entry);
    return this.save();
  }

  removeStaging(volume: string): Promise<void> {
    this.state.staging = this.state.staging.filter((entry) => entry.volume !== volume);
    return this.save();
  }

  private save(): Promise<void> {
    const snapshot = JSON.stringify(this.state);
    const empty = this.state.stopped.length === 0 && this.state.staging.length === 0;
    this.writing = this.writing.then(async () => {
      if (empty) return rm(this.file, { force: true });
      await writeFile(`${this.file}.tmp`, snapshot, { mode: 0o600 });
      await rename(`${this.file}.tmp`, this.file);
    });
    return this.writing;
  }
}

// The one journal of what a run changed and must undo: containers composure stopped, volumes
// holding a half-extracted restore staging folder, and what a strategy made outside composure's
// folders (a TSDB snapshot in the data volume, a Cassandra snapshot tag on the nodes), each
// naming the strategy that undoes it. Each entry is written before the change and cleared after
// its undo, so a run killed half-way leaves a list the next composure command (backup, restore)
// works off: it removes the staging folders and the strategies' leftovers, then restarts the containers.
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

/** Something a strategy made that a killed run would leave behind; `data` is the strategy's own. */
export interface Leftover {
  id: string;
  strategy: string;
  service: string;
  since: string;
  data: Record<string, unknown>;
}

interface JournalFile {
  stopped: StoppedContainer[];
  staging: Staging[];
  leftovers: Leftover[];
}

/** Removes a staging folder from a volume (needs a helper container: supplied by the caller). */
export type StagingCleaner = (staging: Staging) => Promise<void>;

/** How the entries of a killed run are undone (strategies/registry.ts knows who undoes what). */
export interface JournalRecovery {
  cleanStaging: StagingCleaner;
  undoLeftover(leftover: Leftover): Promise<void>;
}

export class StopJournal {
  private readonly file: string;
  private state: JournalFile = { stopped: [], staging: [], leftovers: [] };
  private writing: Promise<void> = Promise.resolve();

  constructor(projectDir: string) {
    this.file = path.join(projectDir, ".stopped.json");
  }

  /** Undoes whatever a killed run left behind. Call while holding the project lock. */
  async recover(recovery: JournalRecovery): Promise<string[]> {
    const legacy = await this.readLegacySnapshots();
    if (!existsSync(this.file) && legacy.length === 0) return [];
    const leftovers = existsSync(this.file) ? await this.read() : { stopped: [], staging: [], leftovers: [] };
    // Staging first: a restore killed between its two renames must put _data back before a start.
    const pending: Staging[] = [];
    for (const staging of leftovers.staging) {
      try {
        await recovery.cleanStaging(staging);
        log.warn(`removed the staging folder an interrupted restore left in ${staging.volume}`);
      } catch (error) {
        log.warn(`${(error as Error).message} (kept in the journal: the next composure command tries again)`);
        pending.push(staging);
      }
    }
    const undone: Leftover[] = [];
    for (const leftover of [...leftovers.leftovers, ...legacy]) {
      try {
        await recovery.undoLeftover(leftover);
      } catch (error) {
        log.warn(`${leftover.service}: ${(error as Error).message} (kept in the journal: the next composure command tries again)`);
        undone.push(leftover);
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
    this.state = { stopped: [], staging: pending, leftovers: undone };
    await this.save();
    await rm(this.legacyFile, { force: true });
    return restarted;
  }

  /** The TSDB snapshot list of composure versions before this journal held it: read once, then removed. */
  private get legacyFile(): string {
    return path.join(path.dirname(this.file), ".pending-snapshots.json");
  }

  private async readLegacySnapshots(): Promise<Leftover[]> {
    if (!existsSync(this.legacyFile)) return [];
    const entries = (JSON.parse(await readFile(this.legacyFile, "utf8").catch(() => "[]")) as { service: string; product: string; kind: string; since: string }[]) ?? [];
    return entries.map((entry, index) => ({ id: `legacy-${index}`, strategy: entry.product.toLowerCase(), service: entry.service, since: entry.since, data: { ...entry, mount: entry.kind } }));
  }

  /** Writes down something a strategy made; the returned step strikes it off once it is undone. */
  async note(strategy: string, service: string, data: Record<string, unknown>): Promise<() => Promise<void>> {
    const entry: Leftover = { id: `${Date.now()}-${Math.random().toString(36).slice(2, 8)}`, strategy, service, since: new Date().toISOString(), data };
    this.state.leftovers.push(entry);
    await this.save();
    return () => {
      this.state.leftovers = this.state.leftovers.filter((other) => other.id !== entry.id);
      return this.save();
    };
  }

  private async read(): Promise<JournalFile> {
    try {
      const parsed = JSON.parse(await readFile(this.file, "utf8")) as JournalFile | StoppedContainer[];
      return Array.isArray(parsed) ? { stopped: parsed, staging: [], leftovers: [] } : { stopped: parsed.stopped ?? [], staging: parsed.staging ?? [], leftovers: parsed.leftovers ?? [] };
    } catch {
      log.warn(`ignoring an unreadable journal ${this.file}`);
      return { stopped: [], staging: [], leftovers: [] };
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
    const empty = this.state.stopped.length === 0 && this.state.staging.length === 0 && this.state.leftovers.length === 0;
    this.writing = this.writing.then(async () => {
      if (empty) return rm(this.file, { force: true });
      await writeFile(`${this.file}.tmp`, snapshot, { mode: 0o600 });
      await rename(`${this.file}.tmp`, this.file);
    });
    return this.writing;
  }
}

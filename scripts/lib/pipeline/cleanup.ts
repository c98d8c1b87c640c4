// The last-in-first-out stack of undo steps (restart a service, delete a snapshot, remove a
// helper). Every step runs even when an earlier one fails; SIGINT/SIGTERM run them too.
import { removeLiveHelpers } from "../docker/helper.ts";
import { log } from "../log.ts";

export type Release = () => Promise<void>;

export class CleanupStack {
  private steps: { label: string; release: Release }[] = [];

  push(label: string, release: Release): Release {
    const entry = { label, release };
    this.steps.push(entry);
    // Running it early (as soon as a capture ends) takes it off the stack.
    return async () => {
      const index = this.steps.indexOf(entry);
      if (index === -1) return;
      this.steps.splice(index, 1);
      await release();
    };
  }

  private pending = new Set<Promise<unknown>>();

  /**
   * Pushes the undo step that `preparing` resolves to, as soon as it does. Until then the step is
   * in flight: a signal arriving meanwhile (say, while `docker stop` runs) waits for it, so the
   * stop it is making is undone too instead of being left to the next run's journal recovery.
   */
  pushWhenReady(label: string, preparing: Promise<Release>): Promise<Release> {
    const pushed = preparing.then((release) => this.push(label, release));
    const settled = pushed.then(
      () => undefined,
      () => undefined,
    );
    this.pending.add(settled);
    void settled.then(() => this.pending.delete(settled));
    return pushed;
  }

  /** Runs every remaining step, newest first; returns the failures as messages. */
  async releaseAll(): Promise<string[]> {
    const failures: string[] = [];
    while (this.steps.length > 0) {
      const { label, release } = this.steps.pop()!;
      try {
        await release();
      } catch (error) {
        failures.push(`${label}: ${(error as Error).message}`);
        log.error(`cleanup step failed: ${label}: ${(error as Error).message}`);
      }
    }
    return failures;
  }

  /** On SIGINT/SIGTERM: run the stack, then exit 130/143. Returns a function to uninstall. */
  releaseOnSignals(): () => void {
    const handler = (signal: NodeJS.Signals) => {
      log.warn(`received ${signal}: restoring services before exiting`);
      void Promise.all([...this.pending])
        .then(() => this.releaseAll())
        .then(() => removeLiveHelpers()) // their own finally blocks never run once we exit
        .finally(() => process.exit(signal === "SIGINT" ? 130 : 143));
    };
    process.once("SIGINT", handler);
    process.once("SIGTERM", handler);
    return () => {
      process.off("SIGINT", handler);
      process.off("SIGTERM", handler);
    };
  }
}

// Units of a backup: the groups of planned services that must be captured one after another,
// while different units may be captured at once. A service is alone unless it shares a volume
// (or a bind mount one of them backs up) with another service, its stop-mode capture stops services depending on it,
// or its strategy captures a whole cluster with its first member: those go in one unit, in plan
// order, so no capture ever stops or snapshots what another capture is reading.
import { mountsOf } from "../compose/mounts.ts";
import { dependentsFirst } from "../compose/discover.ts";
import { getStrategy } from "../strategies/registry.ts";
import type { PlannedService, ProjectPlan } from "./plan.ts";

/** The included services of `plan` grouped into units; units and their members in plan order. */
export function unitsOf(plan: ProjectPlan): PlannedService[][] {
  const included = plan.services.filter((planned) => !planned.excluded);
  const names = included.map((planned) => planned.service.name);
  const parent = new Map(names.map((name) => [name, name]));
  const root = (name: string): string => {
    while (parent.get(name) !== name) name = parent.get(name)!;
    return name;
  };
  const join = (a: string, b: string) => {
    if (parent.has(a) && parent.has(b)) parent.set(root(b), root(a));
  };
  // Bind mounts count when one of the services backs them up (not a shared config file or socket).
  const capturedBinds = new Set(included.flatMap((planned) => planned.mounts.map((selected) => selected.mount.source)));
  const shared = (mount: { type: string; source: string }) => mount.type === "volume" || capturedBinds.has(mount.source);
  const bySource = new Map<string, string>();
  const byCluster = new Map<string, string>();
  for (const planned of included) {
    const name = planned.service.name;
    for (const mount of mountsOf(planned.service).filter(shared)) {
      const first = bySource.get(mount.source);
      if (first) join(first, name);
      else bySource.set(mount.source, name);
    }
    const strategy = getStrategy(planned.strategy);
    if (strategy.clustered) {
      const first = byCluster.get(strategy.kind);
      if (first) join(first, name);
      else byCluster.set(strategy.kind, name);
    }
    if (strategy.stopsForCapture?.(planned.settings)) for (const dependent of dependentsFirst(plan.project, [name])) join(name, dependent);
  }
  const units = new Map<string, PlannedService[]>();
  for (const planned of included) {
    const key = root(planned.service.name);
    units.set(key, [...(units.get(key) ?? []), planned]);
  }
  return [...units.values()];
}

/** True when the service's capture stops it (or others). */
export const stopsForCapture = (planned: PlannedService) => getStrategy(planned.strategy).stopsForCapture?.(planned.settings) === true;

/**
 * The order units start in: hot units (nothing stopped) first, the longest first by their
 * services' durations in the previous good run (a unit never seen before counts as longest, and
 * ties keep plan order), so that the long captures do not start last; then the units that stop
 * a service, in plan order: each takes the stop window once the hot work before it has moved
 * its bytes (StopWindow), so its capture has the machine to itself.
 */
export function startOrder(units: PlannedService[][], previousSeconds: Map<string, number>): PlannedService[][] {
  const secondsOf = (unit: PlannedService[]) => unit.reduce((sum, planned) => sum + (previousSeconds.get(planned.service.name) ?? Infinity), 0);
  const hot = units.filter((unit) => !unit.some(stopsForCapture));
  const stopping = units.filter((unit) => unit.some(stopsForCapture));
  return [...hot.map((unit, index) => ({ unit, index, seconds: secondsOf(unit) })).sort((a, b) => b.seconds - a.seconds || a.index - b.index).map(({ unit }) => unit), ...stopping];
}

/** Runs `work` on every item, at most `limit` at once; results in the order of `items`. */
export async function inParallel<T, R>(items: T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/**
 * The run's stop window: a stopped service's capture gets the machine to itself, so that it is
 * down no longer than when captured alone. Each service takes a turn when its backup begins. A
 * stop-mode capture stops its service once the stop-mode captures before it are done, the hot
 * sessions whose turn came before it are open (a Cassandra snapshot, a dump's session) and no
 * hot capture is moving bytes; until it has restarted, later hot sessions wait to open and no
 * hot capture starts moving bytes. Hot captures run side by side whenever no stop-mode capture
 * holds or waits.
 */
export class StopWindow {
  /** Stop-mode captures holding the window or queued for it. */
  #holders = 0;
  /** Hot captures counted as opening or moving bytes: a queued stop-mode capture waits for them. */
  #busyHot = 0;
  #tail: Promise<void> = Promise.resolve();
  #waiters = new Set<() => void>();

  /** A service's turn, taken now. */
  turn(stops: boolean): Turn {
    return stops ? this.#stopTurn() : this.#hotTurn();
  }

  /** True while a stop-mode capture holds the window or waits for it. */
  get busy(): boolean {
    return this.#holders > 0;
  }

  #stopTurn(): Turn {
    this.#holders += 1;
    const previous = this.#tail;
    let done!: () => void;
    this.#tail = new Promise((resolve) => (done = resolve));
    let ended = false;
    return {
      begin: async () => {
        await previous;
        await this.#until(() => this.#busyHot === 0);
      },
      opened: () => undefined,
      clear: async () => undefined,
      end: () => {
        if (ended) return;
        ended = true;
        this.#holders -= 1;
        done();
        this.#wake();
      },
    };
  }

  #hotTurn(): Turn {
    // Counted while it opens its session and while it moves bytes; between the two (an open
    // session) a queued stop-mode capture goes first.
    let counted = false;
    const count = (on: boolean) => {
      if (counted === on) return;
      counted = on;
      this.#busyHot += on ? 1 : -1;
      if (!on) this.#wake();
    };
    const whenClear = async () => {
      await this.#until(() => this.#holders === 0);
      count(true);
    };
    if (this.#holders === 0) count(true);
    return {
      begin: async () => {
        if (!counted) await whenClear();
      },
      opened: () => count(false),
      clear: whenClear,
      end: () => count(false),
    };
  }

  async #until(ready: () => boolean): Promise<void> {
    while (!ready()) await new Promise<void>((resolve) => this.#waiters.add(resolve));
  }

  #wake(): void {
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const wake of waiters) wake();
  }
}

/** One service's place in the stop window. */
export interface Turn {
  /** Resolves when the session may open (a stop-mode one: stop its service). */
  begin(): Promise<void>;
  /** The session is open: a stop-mode capture waiting for it may go before it moves bytes. */
  opened(): void;
  /** Resolves when the capture may move bytes: a hot one once no stop-mode capture holds or waits. */
  clear(): Promise<void>;
  /** The capture is over (restarted, or failed): idempotent, and due on every path. */
  end(): void;
}

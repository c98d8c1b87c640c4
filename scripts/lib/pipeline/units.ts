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
 * The run's stop window. A capture that stops its service holds it alone (one such capture at a
 * time), and hot captures move their bytes only while no stop-mode capture holds or waits for
 * it: a stopped service's capture has the machine to itself, so it is down no longer than when
 * captured alone. Hot captures still prepare meanwhile (a snapshot, a dump's session), and every
 * capture still runs beside the others up to `parallelism`.
 */
export class StopWindow {
  #tail: Promise<void> = Promise.resolve();
  /** Stop-mode captures holding the window or waiting for it. */
  #holders = 0;
  #cleared: { promise: Promise<void>; resolve: () => void } | undefined;

  /** Runs `work` (a capture that stops its service) once no other one runs. */
  async hold<T>(work: () => Promise<T>): Promise<T> {
    const previous = this.#tail;
    let done!: () => void;
    this.#tail = new Promise((resolve) => (done = resolve));
    this.#holders += 1;
    try {
      await previous;
      return await work();
    } finally {
      this.#holders -= 1;
      done();
      if (this.#holders === 0) {
        this.#cleared?.resolve();
        this.#cleared = undefined;
      }
    }
  }

  /** True when a hot capture would have to wait. */
  get busy(): boolean {
    return this.#holders > 0;
  }

  /** Resolves once no stop-mode capture holds the window or waits for it. */
  clear(): Promise<void> {
    if (this.#holders === 0) return Promise.resolve();
    if (!this.#cleared) {
      let resolve!: () => void;
      const promise = new Promise<void>((settle) => (resolve = settle));
      this.#cleared = { promise, resolve };
    }
    return this.#cleared.promise;
  }
}

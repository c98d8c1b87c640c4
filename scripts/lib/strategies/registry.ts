// Strategy kind (folder name, label value) -> implementation. Auto-detection asks each strategy
// with a `detect` in this order; `volume` is the fallback.
import type { ServiceInfo } from "../compose/discover.ts";
import type { Strategy } from "./types.ts";
import { volumeStrategy } from "./volume/index.ts";

const strategies: Strategy<any>[] = [volumeStrategy];

export const strategyKinds: readonly string[] = strategies.map((strategy) => strategy.kind);

export function getStrategy(kind: string): Strategy<any> {
  const strategy = strategies.find((candidate) => candidate.kind === kind);
  if (!strategy) throw new Error(`unknown strategy ${kind}`);
  return strategy;
}

export function detectStrategy(service: ServiceInfo): string {
  return strategies.find((strategy) => strategy.detect?.(service))?.kind ?? "volume";
}

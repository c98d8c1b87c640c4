// Strategy kind (folder name, label value) -> implementation. Auto-detection asks each strategy
// with a `detect` in this order; `volume` is the fallback.
import type { ServiceInfo } from "../compose/discover.ts";
import type { Strategy } from "./types.ts";
import { mariadbStrategy } from "./mariadb/index.ts";
import { postgresStrategy } from "./postgres/index.ts";
import { sqliteStrategy } from "./sqlite/index.ts";
import { prometheusStrategy } from "./prometheus/index.ts";
import { redisStrategy } from "./redis/index.ts";
import { victoriaMetricsStrategy } from "./victoriametrics/index.ts";
import { elasticsearchStrategy } from "./elasticsearch/index.ts";
import { cassandraStrategy } from "./cassandra/index.ts";
import { volumeStrategy } from "./volume/index.ts";
import { stagingCleaner } from "./volume/swap.ts";
import type { JournalRecovery } from "../lifecycle/journal.ts";

const strategies: Strategy<any>[] = [postgresStrategy, mariadbStrategy, sqliteStrategy, redisStrategy, prometheusStrategy, victoriaMetricsStrategy, elasticsearchStrategy, cassandraStrategy, volumeStrategy];

export const strategyKinds: readonly string[] = strategies.map((strategy) => strategy.kind);

export function getStrategy(kind: string): Strategy<any> {
  const strategy = strategies.find((candidate) => candidate.kind === kind);
  if (!strategy) throw new Error(`unknown strategy ${kind}`);
  return strategy;
}

export function detectStrategy(service: ServiceInfo): string {
  return strategies.find((strategy) => strategy.detect?.(service))?.kind ?? "volume";
}

/**
 * What undoes the journal entries a killed run left that belong to a strategy, for
 * StopJournal.recover: the volume strategy's restore staging folders, and each leftover by the
 * strategy its entry names.
 */
export function journalRecovery(helperImage: string, project: string): JournalRecovery {
  return {
    cleanStaging: stagingCleaner(helperImage, project),
    async undoLeftover(leftover) {
      const strategy = strategies.find((candidate) => candidate.kind === leftover.strategy);
      if (!strategy?.undoLeftover) throw new Error(`no strategy undoes a leftover of kind ${leftover.strategy}`);
      await strategy.undoLeftover(leftover, { helperImage, project });
    },
  };
}

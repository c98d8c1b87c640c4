// The dump family: a database server dumped hot, inside its own container (postgres, mariadb).
// The strategy around the engine is one: connect and check before anything runs, dump the chosen
// databases and the accounts into the store, restore accounts first with a rescue dump of what
// is replaced, probe by table facts. Each engine folder gives only its hooks.
import type { z } from "zod";
import type { Artifact } from "../../catalog/manifest.ts";
import type { ServiceInfo } from "../../compose/discover.ts";
import type { ArtifactStore } from "../../store/types.ts";
import type { ProbeResult, RestoreContext, Strategy } from "../types.ts";
import {
  accountsFirst,
  asStepError,
  chooseDatabases,
  dumpKindOf,
  keepRescueDumps,
  optionsOrDefaults,
  probeDatabases,
  serviceToRestoreInto,
  type DumpEngine,
  type TableFacts,
} from "./in-container.ts";
import { hotSession } from "./session.ts";

export interface DumpOptionsShape {
  databases?: string[];
}

/** What one engine of the family does; `Conn` and `Server` are its own. */
export interface DumpHooks<Options extends DumpOptionsShape, Conn, Server extends { version: string }> {
  engine: DumpEngine;
  options: z.ZodType<Options, z.ZodTypeDef, unknown>;
  detect(service: ServiceInfo): boolean;
  /** Connects for a phase and checks the tools it needs and the server; failures name the cause. */
  open(phase: "prepare" | "restore" | "probe", service: ServiceInfo, options: Options): Promise<{ conn: Conn; server: Server }>;
  listDatabases(conn: Conn, server: Server): Promise<string[]>;
  /** Dumps the databases (and the accounts) into the store. */
  capture(conn: Conn, server: Server, databases: string[], store: ArtifactStore, withAccounts: boolean): Promise<Artifact[]>;
  /** The dry-run line of a database artifact (`replaces`: what happens to the database that exists, or that it does not). */
  describeDatabase(artifact: Artifact, replaces: string, options: Options): string;
  /** The dry-run line of the accounts artifact. */
  describeAccounts(artifact: Artifact): string;
  /** How a database in use is dropped, for the dry run ("ending its sessions"). */
  dropping: string;
  restoreAccounts(ctx: RestoreContext<unknown>, conn: Conn, server: Server, artifact: Artifact): Promise<string>;
  restoreDatabase(ctx: RestoreContext<unknown>, conn: Conn, server: Server, artifact: Artifact, options: Options): Promise<string>;
  liveFacts(conn: Conn, database: string): Promise<TableFacts>;
}

export function dumpStrategy<Options extends DumpOptionsShape, Conn, Server extends { version: string }>(hooks: DumpHooks<Options, Conn, Server>): Strategy<Options> {
  const { engine } = hooks;
  const isAccounts = (artifact: Artifact) => dumpKindOf(engine, artifact) === engine.accounts;
  return {
    kind: engine.kind,
    options: hooks.options,
    detect: hooks.detect,

    async openSession(ctx) {
      // Hot: nothing stops. Fail early and clearly when the server cannot be dumped.
      const { conn, server } = await hooks.open("prepare", ctx.service, ctx.options);
      return hotSession(async () => {
        try {
          const databases = chooseDatabases(engine, ctx.service.name, await hooks.listDatabases(conn, server), ctx.options.databases);
          return await hooks.capture(conn, server, databases, ctx.store, true);
        } catch (error) {
          throw asStepError(engine, "capture", ctx.service.name, error);
        }
      });
    },

    async restore(ctx, artifacts) {
      const options = optionsOrDefaults(hooks.options, ctx.options);
      const ordered = accountsFirst(engine, artifacts);
      const { conn, server } = await hooks.open("restore", serviceToRestoreInto(ctx), options);
      try {
        const existing = await hooks.listDatabases(conn, server);
        if (ctx.dryRun) {
          return ordered.map((artifact) => {
            if (isAccounts(artifact)) return hooks.describeAccounts(artifact);
            const database = artifact.facts!.database as string;
            const replaces = existing.includes(database) ? `drop database ${database} (${hooks.dropping})${ctx.rescue ? " after keeping a rescue dump of it" : ""}, then` : `database ${database} does not exist:`;
            return hooks.describeDatabase(artifact, replaces, options);
          });
        }
        await ctx.reader.check(ordered);
        if (ctx.rescue) await keepRescueDumps(ctx, engine, ordered, existing, (databases, store, withAccounts) => hooks.capture(conn, server, databases, store, withAccounts));
        const done: string[] = [];
        for (const artifact of ordered) done.push(isAccounts(artifact) ? await hooks.restoreAccounts(ctx, conn, server, artifact) : await hooks.restoreDatabase(ctx, conn, server, artifact, options));
        return done;
      } catch (error) {
        throw asStepError(engine, "restore", ctx.serviceName, error);
      }
    },

    async probe(ctx, recorded): Promise<ProbeResult> {
      const { conn, server } = await hooks.open("probe", ctx.service, optionsOrDefaults(hooks.options, ctx.options));
      const existing = await hooks.listDatabases(conn, server);
      return probeDatabases(engine, { service: ctx.service.name, serverVersion: server.version, existing, wanted: ctx.options.databases, liveFacts: (database) => hooks.liveFacts(conn, database) }, recorded);
    },
  };
}

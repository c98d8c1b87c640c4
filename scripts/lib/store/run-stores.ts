// The stores of one backup run, per service and engine. The repository is opened once per run
// (restic checked, the repository and its password file made on first use, the password tried),
// and only when a service of the run uses it.
import type { StorageEngine, Config } from "../config/schema.ts";
import { mountInEveryHelper } from "../docker/helper.ts";
import { archiveStore } from "./archive.ts";
import { repositoryStore } from "./repository.ts";
import { helperBinds, openRepository, repositoryOf, type Repository } from "./restic.ts";
import type { ArtifactStore } from "./types.ts";

export interface RunStores {
  /**
   * The store of one service (its folder of the run made already); fails when its engine cannot be
   * used. `background`: nothing waits for this capture (no service is stopped for it), so its
   * compressors run at a lower priority and leave the cores to stopped services' captures.
   */
  open(service: string, dir: string, engine: StorageEngine, background?: boolean): Promise<ArtifactStore>;
}

/** The nice value of a background capture's compressors. */
const backgroundNiceness = 10;

export function runStores(config: Config, project: string, runDir: string): RunStores {
  let repository: Promise<Repository> | undefined;
  const openOnce = () =>
    (repository ??= openRepository(repositoryOf(config, project)).then((opened) => {
      mountInEveryHelper(helperBinds(opened));
      return opened;
    }));
  return {
    async open(service, dir, engine, background = false) {
      const archive = archiveStore({ runDir, dir, compression: { level: config.compression.level, niceness: background ? backgroundNiceness : 0 } });
      if (engine === "archive") return archive;
      return repositoryStore({ repository: await openOnce(), service, fallback: archive });
    },
  };
}

// restic against the repository a composure destination holds for a project (the repository
// engine's defaults: <destination>/<project>/.repository, password <destination>/.repository-password).
import path from "node:path";
import { resticBinary } from "../../scripts/lib/store/restic.ts";
import { sh, tempDir } from "./composure.ts";

export function resticOf(destination: string, project: string) {
  const repository = path.join(destination, project, ".repository");
  const cache = tempDir("restic-cache");
  const run = (...args: string[]) => sh("env", [`RESTIC_REPOSITORY=${repository}`, `RESTIC_PASSWORD_FILE=${path.join(destination, ".repository-password")}`, `RESTIC_CACHE_DIR=${cache}`, resticBinary(), ...args]);
  return {
    repository,
    passwordFile: path.join(destination, ".repository-password"),
    run,
    /** Ids of every snapshot in the repository, sorted. */
    snapshotIds: async () => (JSON.parse(await run("snapshots", "--json", "--no-lock")) as { id: string }[]).map((snapshot) => snapshot.id).sort(),
  };
}

// Putting restored files in place: extract into a staging folder, then swap it in, so that a bad
// archive (or a kill) leaves the old content.
//
// Beside (plain local volumes, the usual case): the staging folder and the old content sit next
// to the volume's _data folder, in the engine's own folder of that volume, where no container sees
// them. The swap is two renames, and the old content is deleted in the background once the
// service runs again: deleting 20,000 files took longer than extracting them here.
// Inside (binds, volumes with driver options, volumes other running containers use): the staging
// folder is inside the volume; the old content is deleted and the staged entries moved in.
import path from "node:path";
import type { ExtractTree } from "../../store/types.ts";
import { findTest, type PathPattern } from "../../config/path-patterns.ts";
import { restoredMetadataLines, shellQuote, swapInStagedLines, writeScript, type Extraction } from "../../archive/tar-transfer.ts";
import type { PipeDir } from "../../docker/pipe-dir.ts";
import { runningUsersOfVolume } from "../../docker/containers.ts";
import { isLocalEngine } from "../../docker/engine.ts";
import { helperLabel, startDetached, withHelper, type Helper } from "../../docker/helper.ts";
import { inspectVolume } from "../../docker/volumes.ts";
import { failpoint } from "../../lifecycle/failpoint.ts";
import { messageOf } from "../../errors.ts";
import { log } from "../../log.ts";
import type { Staging, StagingCleaner, StopJournal } from "../../lifecycle/journal.ts";

const insideStaging = ".composure-restore";
const besideStaging = "composure-restore";
/** Label of the containers deleting replaced content after a restore (not helpers: they finish on their own). */
const cleanupLabel = "composure.cleanup";

/** Where a restore of `volume` stages: the host folder holding its _data (beside), or undefined (inside). */
export async function besideFolder(volume: { name: string; kind: "volume" | "bind" }, stopping: string[]): Promise<string | undefined> {
  if (volume.kind !== "volume" || !isLocalEngine()) return undefined;
  const spec = await inspectVolume(volume.name);
  if (!spec?.mountpoint || spec.driver !== "local" || Object.keys(spec.options).length > 0 || path.basename(spec.mountpoint) !== "_data") return undefined;
  // A running container keeps the folder it mounted: it must see the restored files in that folder.
  const others = (await runningUsersOfVolume(volume.name)).filter((user) => !stopping.includes(user.id) && !user.labels[helperLabel]);
  return others.length ? undefined : path.dirname(spec.mountpoint);
}

/** Helper binds for a restore into `volume`: its folder at /volroot (beside) or the volume at /volume. */
export const swapBinds = (volume: string, beside: string | undefined) => (beside ? [`${beside}:/volroot`] : [`${volume}:/volume`]);

/**
 * Extracts a tree artifact (`extract` writes it into a folder of the helper) into a staging folder
 * and swaps it in for the content of `volume`, with a helper that has swapBinds(volume, beside).
 * What `keep` matches stays as the live volume has it. Returns what is left to do once the service runs.
 */
export async function extractInto(session: { helper: Helper; pipe: PipeDir | undefined }, volume: string, beside: string | undefined, extract: ExtractTree, journal?: StopJournal, keep: PathPattern[] = []): Promise<{ afterRestart(image: string, project: string): Promise<void> }> {
  const { helper, pipe } = session;
  const entry: Staging = beside ? { volume, rootMtime: "", beside, old: `composure-old-${Date.now()}-${process.pid}` } : { volume, rootMtime: await rootMtimeOf(helper, volume) };
  await journal?.addStaging(entry);
  try {
    const staging = beside ? `/volroot/${besideStaging}` : `/volume/${insideStaging}`;
    await check(helper, ["sh", "-c", `rm -rf ${staging} && mkdir -m 700 ${staging}`], `cannot prepare ${volume} for the restore`);
    try {
      await failpoint("restore:extract");
      const extraction = await extract(helper, pipe, staging);
      if (keep.length) await carryOver(helper, beside ? { live: "/volroot/_data", skip: "" } : { live: "/volume", skip: insideStaging }, staging, keep);
      await failpoint("restore:swap");
      const lines = beside ? besideSwapLines(extraction, entry.old!) : swapInStagedLines("/volume", insideStaging, extraction);
      await check(helper, ["sh", await writeScript(pipe!, "swap.sh", lines)], `cannot swap the restored files into ${volume}`);
    } catch (error) {
      await helper.run(["sh", "-c", cleanupCommand(entry)]);
      throw error;
    }
  } finally {
    await journal?.removeStaging(volume);
  }
  return { afterRestart: (image, project) => (beside ? removeInBackground(image, project, beside, entry.old!) : Promise.resolve()) };
}

// $1 live root, $2 staged root, $3 the staging folder's name in the live root (never carried; "" beside),
// then a find test for the kept paths. Each live entry it matches replaces the staged one (hard
// links: instant, and the live files stay in place until the swap), its parent folder keeping its
// mtime; what the live volume lacks stays as restored. A failure leaves the live volume as it was.
const carryOverScript = `
set -e
live=$1 staged=$2 skip=$3
shift 3
link='to=$1; shift; for p; do
  d="$to/\${p%/*}"; t=$(stat -c %Y -- "$d" 2>/dev/null) || { mkdir -p -- "$d"; t=; }
  rm -rf -- "$to/$p" || exit 1
  cp -al -- "$p" "$to/$p" 2>/dev/null || { rm -rf -- "$to/$p" && cp -a -- "$p" "$to/$p"; } || exit 1
  [ -z "$t" ] || touch -c -d "@$t" -- "$d"
done'
cd -- "$live"
find . -mindepth 1 -path "./$skip" -prune -o "$@" -prune -exec sh -c "$link" sh "$staged" {} +
`;

/** Puts the live volume's entries that `keep` matches into the staged tree, in place of the backup's. */
async function carryOver(helper: Helper, from: { live: string; skip: string }, staging: string, keep: PathPattern[]): Promise<void> {
  await check(helper, ["sh", "-c", carryOverScript, "sh", from.live, staging, from.skip, ...findTest(keep)], "cannot keep the live volume's excluded or secret paths");
}

async function rootMtimeOf(helper: Helper, volume: string): Promise<string> {
  // The root's mtime changes when the staging folder comes and goes: it is put back on failure
  // (and journaled, so that recovery after a kill puts it back too).
  return (await check(helper, ["stat", "-c", "%Y", "/volume"], `cannot read ${volume} for the restore`)).trim();
}

async function check(helper: Helper, argv: string[], what: string): Promise<string> {
  const result = await helper.run(argv);
  if (result.exitCode !== 0) throw new Error(`${what}: ${result.stderr.trim() || `exit ${result.exitCode}`}`);
  return result.stdout;
}

/** The staged folder gets the timestamps and the root's owner and mode, then two renames swap it in. */
function besideSwapLines(extraction: Extraction, old: string): string[] {
  return ["set -e", `cd /volroot/${besideStaging}`, ...restoredMetadataLines(extraction), "cd /volroot", `mv _data ${old}`, `mv ${besideStaging} _data`];
}

/** Undoes a restore that stopped half-way: the old content back in place, no staging folder. */
function cleanupCommand(entry: Staging): string {
  if (!entry.beside) return `rm -rf /volume/${insideStaging} && touch -c -d @${Number(entry.rootMtime)} /volume`;
  const old = shellQuote(entry.old ?? "composure-old-");
  return `cd /volroot && { [ -d _data ] || mv ${old} _data; } && rm -rf ${besideStaging} ${old}`;
}

/** Removes what an interrupted restore left in a volume (journal recovery). */
export function stagingCleaner(image: string, project: string): StagingCleaner {
  return async (entry) => {
    await withHelper(image, project, swapBinds(entry.volume, entry.beside), (helper) => check(helper, ["sh", "-c", cleanupCommand(entry)], `cannot clean up the interrupted restore of ${entry.volume}`));
  };
}

/**
 * A container that deletes the replaced content (and leftovers of earlier restores) and removes
 * itself. The restore is done by then: a failure here is a warning with the folder to delete.
 */
async function removeInBackground(image: string, project: string, beside: string, old: string): Promise<void> {
  try {
    await startDetached({ image, project, binds: [`${beside}:/volroot`] }, `rm -rf /volroot/${old} /volroot/composure-old-*`, cleanupLabel);
  } catch (error) {
    log.warn(`could not start deleting the replaced content ${path.join(beside, old)}: ${messageOf(error)}; delete that folder by hand`);
  }
}

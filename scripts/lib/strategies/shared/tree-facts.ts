// Facts about a directory tree, taken by the same busybox script on the live volume at backup time
// and on the restored volume in a restore drill: entries, regular files, their bytes, a hash of the
// sorted listing (types, sizes, names) and a hash of a sample of file contents (the first MiB of
// up to 8 files spread over the sorted names). Two metadata passes (one stat of every entry gives
// the counts and the listing), plus at most 8 MiB of reads.
import type { Helper } from "../../docker/helper.ts";
import { findTest, type PathPattern } from "../../config/path-patterns.ts";

export interface TreeFacts {
  kind: "tree";
  entries: number;
  files: number;
  bytes: number;
  listing: string;
  sample: string;
  /** Taken while the service kept writing (hot mode): a drill reports differences without failing. */
  live?: boolean;
}

// Names with newlines split into several lines here; both sides split them the same way.
// "$@" after the folder: a find test for entries left out (exclude_paths), pruned with what lies under them.
const script = `
cd -- "$1" || exit 2
shift
if [ $# -gt 0 ]; then set -- "$@" -prune -o; fi
t=$(mktemp) || exit 2
find . -mindepth 1 "$@" -print0 | xargs -0 -r stat -c '%F|%s|%n' | awk -v counts="$t" '
  function header(name) { stream += 512; if (length(name) > 99) stream += 512 + int((length(name) + 512) / 512) * 512 }
  { n++ }
  /^regular (empty )?file\\|[0-9]+\\|/ { i = index($0, "|"); rest = substr($0, i + 1); j = index(rest, "|"); size = substr(rest, 1, j - 1); files++; bytes += size; header(substr(rest, j + 1)); stream += int((size + 511) / 512) * 512; print "f " size " " substr(rest, j + 1); next }
  /^[^|]+\\|[0-9]+\\|/ { i = index($0, "|"); rest = substr($0, i + 1); j = index(rest, "|"); header(substr(rest, j + 1) (substr($0, 1, i - 1) == "directory" ? "/" : "")); print substr($0, 1, i - 1) " " substr(rest, j + 1); next }
  { print }
  END { printf "entries %d\\nfiles %d\\nbytes %.0f\\nstream %.0f\\n", n, files, bytes, stream + 512 + 1024 > counts }' | sort | sha256sum | sed 's/ .*//; s/^/listing /' > "$t.listing"
cat "$t" "$t.listing"
files=$(sed -n 's/^files //p' "$t")
rm -f "$t" "$t.listing"
find . "$@" -type f -print | sort | awk -v n="$files" 'BEGIN { k = int((n + 7) / 8) } (NR - 1) % k == 0' |
  while IFS= read -r name; do head -c 1048576 -- "$name" 2>/dev/null | sha256sum; done | sha256sum | sed 's/ .*//; s/^/sample /'
`;

/** Runs the facts script on `dir` of the helper; what `exclude` matches is not counted (it was not captured). */
export async function treeFacts(helper: Helper, dir: string, exclude: PathPattern[] = []): Promise<TreeFacts> {
  return (await measureTree(helper, dir, exclude)).facts;
}

/**
 * treeFacts, and the size of the tar stream of the tree as busybox tar writes it (a header per
 * entry, two for a long name, file data in 512-byte blocks, the end blocks): what a capture's
 * progress line shows its share of. Hard links are counted as copies: a little too large then.
 */
export async function measureTree(helper: Helper, dir: string, exclude: PathPattern[] = []): Promise<{ facts: TreeFacts; streamBytes: number }> {
  const result = await helper.run(["sh", "-c", script, "sh", dir, ...(exclude.length ? findTest(exclude) : [])]);
  if (result.exitCode !== 0) throw new Error(`cannot read the facts of ${dir}: ${result.stderr.trim() || `exit ${result.exitCode}`}`);
  return { facts: parseTreeFacts(result.stdout), streamBytes: Number(/^stream (\d+)$/m.exec(result.stdout)?.[1] ?? 0) };
}

export function parseTreeFacts(output: string): TreeFacts {
  const values = new Map(output.trim().split("\n").map((line) => line.split(" ", 2) as [string, string]));
  const number = (key: string) => {
    const value = Number(values.get(key) ?? "0");
    if (!Number.isFinite(value)) throw new Error(`unexpected ${key} in the tree facts: ${values.get(key)}`);
    return value;
  };
  const hash = (key: string) => {
    const value = values.get(key) ?? "";
    if (!/^[0-9a-f]{64}$/.test(value)) throw new Error(`unexpected ${key} hash in the tree facts: ${JSON.stringify(value)}`);
    return value;
  };
  return { kind: "tree", entries: number("entries"), files: number("files"), bytes: number("bytes"), listing: hash("listing"), sample: hash("sample") };
}

export function isTreeFacts(facts: unknown): facts is TreeFacts {
  return (facts as TreeFacts | undefined)?.kind === "tree";
}

/** What differs between the recorded and the live facts, one line each, naming the fact. */
export function compareTreeFacts(volume: string, recorded: TreeFacts, live: TreeFacts): string[] {
  const differences: string[] = [];
  for (const key of ["entries", "files", "bytes"] as const) {
    if (recorded[key] !== live[key]) differences.push(`volume ${volume}: ${key} ${live[key]}, recorded ${recorded[key]}`);
  }
  if (recorded.listing !== live.listing) differences.push(`volume ${volume}: the listing (names, types, sizes) differs from the recorded one`);
  if (recorded.sample !== live.sample) differences.push(`volume ${volume}: the content sample differs from the recorded one`);
  return differences;
}

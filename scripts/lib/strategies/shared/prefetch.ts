// Reads the small files of the volumes ahead of tar, eight at a time. tar reads one file after the
// other; from a cold page cache each small file waits for its own disk request. Reading them in
// parallel just before tar needs them keeps the disk busy. Measured on the bench's 1 GB volume
// (20,000 files), cold cache: tar | cat 2.4-2.5 s alone, 1.8-2.0 s with this beside it.
//
// It only warms the page cache, so it can never change what the archive holds. It runs at the
// lowest CPU priority, so a warm cache, where zstd needs both cores, costs almost nothing. It reads
// at most a quarter of the memory available, so it never evicts what it read before tar gets
// there. It stops when the helper is removed.
import type { Helper } from "../../docker/helper.ts";

// Files under 1 MiB, in the order find walks them (tar's order), until the byte budget is spent.
// A name with a newline is split in two and its read fails: that file is simply not prefetched.
const script = `
renice -n 19 -p $$ >/dev/null 2>&1
budget=$(awk '/^MemAvailable:/ { printf "%.0f", $2 * 1024 / 4 }' /proc/meminfo)
for dir in "$@"; do find "$dir" -type f -size -1024k -exec stat -c '%s %n' {} +; done | awk -v budget="\${budget:-0}" '{ total += $1; if (total > budget) exit; sub(/^[0-9]+ /, ""); print }' |
  tr '\\n' '\\0' | xargs -0 -r -P 8 -n 64 cat > /dev/null 2>&1
exit 0
`;

/** Starts reading the small files of `dirs` (in this order) in the helper; never fails. */
export function prefetchSmallFiles(helper: Helper, dirs: string[]): void {
  helper.run(["sh", "-c", script, "sh", ...dirs]).catch(() => undefined);
}

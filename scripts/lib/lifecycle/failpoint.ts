// Failpoints for the fault suite: with COMPOSURE_FAILPOINT=<name>, the process announces that it
// reached <name> (writing the name to COMPOSURE_FAILPOINT_MARKER) and waits there until the file
// "<marker>.continue" appears, so a test can kill -9 it in exactly that phase, or change the
// world (remove a container) and let it go on. Without the variable they cost nothing.
import { existsSync, writeFileSync } from "node:fs";

export async function failpoint(name: string): Promise<void> {
  if (process.env.COMPOSURE_FAILPOINT !== name) return;
  const marker = process.env.COMPOSURE_FAILPOINT_MARKER;
  if (marker) writeFileSync(marker, name);
  while (!(marker && existsSync(`${marker}.continue`))) await new Promise((resolve) => setTimeout(resolve, 50));
}

// Failpoints for the fault suite: with COMPOSURE_FAILPOINT=<name>, the process announces that it
// reached <name> (writing the name to COMPOSURE_FAILPOINT_MARKER) and waits there until the file
// "<marker>.continue" appears, so a test can kill -9 it in exactly that phase, or change the
// world (remove a container) and let it go on. Each arrival also appends `who` (the service) to
// "<marker>.arrivals": captures running side by side wait there together. Without the variable
// they cost nothing.
import { appendFileSync, existsSync, writeFileSync } from "node:fs";

export async function failpoint(name: string, who = ""): Promise<void> {
  if (process.env.COMPOSURE_FAILPOINT !== name) return;
  const marker = process.env.COMPOSURE_FAILPOINT_MARKER;
  if (marker) {
    appendFileSync(`${marker}.arrivals`, `${who}\n`);
    writeFileSync(marker, name);
  }
  while (!(marker && existsSync(`${marker}.continue`))) await new Promise((resolve) => setTimeout(resolve, 50));
}

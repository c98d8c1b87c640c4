// Builds the busybox helper image from the host's static busybox: the same code composure uses
// when the configured helper image is missing. Usage: build-helper-image.ts <tag>
import { main } from "./lib/cli.ts";
import { checkEngine } from "./lib/docker/engine.ts";
import { buildBusyboxImage, findStaticBusybox } from "./lib/docker/helper-image.ts";
import { ExitCode, UsageError } from "./lib/errors.ts";

await main(async () => {
  const tag = process.argv[2];
  if (!tag) throw new UsageError("usage: build-helper-image.ts <tag>");
  const busybox = findStaticBusybox();
  if (!busybox) throw new UsageError("no static busybox on this host: apt-get install busybox-static");
  await checkEngine(); // no engine: say so and what to do, before streaming anything at it
  await buildBusyboxImage(busybox, tag);
  return ExitCode.ok;
});

// make import FILE=<path> [DESTINATION=]: adds the run in a file make export wrote to this
// destination's catalog, every byte checked first. See lib/pipeline/transfer.ts.
import { loadSettings, main } from "./lib/cli.ts";
import { ExitCode, UsageError } from "./lib/errors.ts";
import { refreshMetrics } from "./lib/metrics/textfile.ts";
import { importRun } from "./lib/pipeline/transfer.ts";

await main(async () => {
  const config = loadSettings();
  const file = process.env.FILE;
  if (!file) throw new UsageError("make import needs FILE=<path>, a file make export wrote");
  const imported = await importRun(config, file, process.env.PROJECT || undefined);
  await refreshMetrics(config, imported.project); // the catalog has a run more
  return ExitCode.ok;
});

// make export RUN=<id>|latest FILE=<path> [PROJECT=]: one run as one self-checking tar file, to
// carry it to another host (make import there). See lib/pipeline/transfer.ts.
import { loadSettings, main, oneProject } from "./lib/cli.ts";
import { ExitCode, UsageError } from "./lib/errors.ts";
import { exportRun } from "./lib/pipeline/transfer.ts";

await main(async () => {
  const config = loadSettings();
  const project = oneProject(config, "export");
  const selector = process.env.RUN;
  if (!selector) throw new UsageError("make export needs RUN=<id> (make list shows the ids; RUN=latest exports the newest run)");
  const file = process.env.FILE;
  if (!file) throw new UsageError("make export needs FILE=<path>, the tar file to write (e.g. FILE=run.tar)");
  await exportRun(config, project, selector, file);
  return ExitCode.ok;
});

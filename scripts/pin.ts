// make pin RUN=<id>|latest / make unpin RUN=<id> [PROJECT=]: a pinned run is never deleted by
// make prune (here, and its off-site copy by make prune FROM=remote on this host).
import { findRun, projectDir } from "./lib/catalog/runs.ts";
import { pinningTags, readPin, removePin, writePin } from "./lib/catalog/pins.ts";
import { loadSettings, main, oneProject } from "./lib/cli.ts";
import { ExitCode, UsageError } from "./lib/errors.ts";
import { log } from "./lib/log.ts";
import { acquireLock } from "./lib/pipeline/lock.ts";

const action = process.argv[2];

await main(async () => {
  if (action !== "pin" && action !== "unpin") throw new UsageError("usage: scripts/pin.ts pin|unpin");
  const config = loadSettings();
  const project = oneProject(config, action);
  const selector = process.env.RUN;
  if (!selector) throw new UsageError(`make ${action} needs RUN=<id> (make list shows the ids${action === "pin" ? "; RUN=latest pins the newest run" : ""})`);
  // Under the project lock: a prune deciding meanwhile would not see the pin.
  const unlock = await acquireLock(projectDir(config.destination, project), action, config.lock.timeout_seconds);
  try {
    const { manifest, dir } = await findRun(config.destination, project, selector);
    if (action === "pin") {
      await writePin(dir);
      log.info(`pinned run ${manifest.runId} of project ${project}: make prune keeps it until make unpin RUN=${manifest.runId}`);
    } else {
      const pinned = await readPin(dir);
      await removePin(dir);
      const tags = pinningTags(manifest, config.retention.pin_tags);
      log.info(pinned ? `unpinned run ${manifest.runId} of project ${project}` : `run ${manifest.runId} of project ${project} was not pinned with make pin`);
      if (tags.length) log.warn(`run ${manifest.runId} carries the tag${tags.length > 1 ? "s" : ""} ${tags.join(", ")}, which retention.pin_tags pins: it stays pinned (remove the tag from pin_tags to let retention decide)`);
    }
  } finally {
    await unlock();
  }
  return ExitCode.ok;
});

// A helper session closed while its container still starts (a Cassandra snapshot that fails at
// once closes the helpers begun beside it): nothing may escape as an unhandled rejection, which
// would end the run before its manifest, and neither the container nor its pipe folder may stay.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { test } from "node:test";
import { beginHelpers } from "../../scripts/lib/docker/helper.ts";
import { busyboxImage, docker, requireDocker, tempDir } from "../support/composure.ts";

test("helpers closed while they start leave nothing and reject nothing unhandled", async () => {
  await requireDocker();
  const project = `cmpt-hclose${process.pid}`;
  const unhandled: unknown[] = [];
  const record = (reason: unknown) => unhandled.push(reason);
  process.on("unhandledRejection", record);
  try {
    const dir = tempDir("helper-close");
    for (let round = 0; round < 5; round++) {
      const sessions = await beginHelpers(busyboxImage, project, [[`${dir}:/data:ro`], [`${dir}:/data:ro`]]);
      await Promise.all(sessions.map((session) => session.close()));
      for (const session of sessions) if (session.pipe) assert.equal(existsSync(session.pipe.dir), false, "the pipe folder is removed");
    }
    await new Promise((resolve) => setTimeout(resolve, 500)); // a late rejection would show by now
    assert.deepEqual(unhandled, [], "no rejection escapes");
    assert.equal(await docker("ps", "-aq", "--filter", `label=composure.helper=${project}`), "", "no helper container is left");
  } finally {
    process.off("unhandledRejection", record);
  }
});

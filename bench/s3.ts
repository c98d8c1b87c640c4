// Off-site copies to S3 (rclone serve s3 of the pinned rclone on 127.0.0.1, test/support/remotes.ts)
// on the mixed volume's dataset: composure's upload of a backup run (`make sync`, the whole
// command: start-up, the remote listing, the upload, the size check, the manifest last) and its
// download (the step `make restore FROM=remote` runs before restoring: fetchRemoteRun, timed by
// itself so the restore's own work is not counted), each against `rclone copy` of the same run
// folder alone with the same rclone and the same number of transfers (the limit).
import { readdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { parseConfig } from "../scripts/lib/config/load.ts";
import { fetchRemoteRun, remoteFrom } from "../scripts/lib/pipeline/offsite.ts";
import { pinnedRcloneVersion, rcloneBinary } from "../scripts/lib/remote/rclone-binary.ts";
import { S3Server } from "../test/support/remotes.ts";
import { duBytes, dropCaches, mb, removeDir, round, run, say, seconds, versionOf } from "./common.ts";
import type { Composure } from "./composure.ts";
import { generateMixed } from "./datasets.ts";
import { projectName, type BenchStack } from "./stack.ts";

export interface S3Figures {
  rclone_version?: string;
  /** The backup run's folder (what goes up and comes back). */
  run_bytes: number;
  upload_s: number;
  rclone_upload_s: number;
  download_s: number;
  rclone_download_s: number;
}

const transfers = 4;

export async function measureS3(stack: BenchStack, composure: Composure, service: string, volume: string, sizeGb: number, work: string, timeoutMs: number): Promise<S3Figures> {
  await generateMixed(await stack.mountpoint(volume), sizeGb * 1024 ** 3);
  await run("sync", [], { timeoutMs });
  const server = new S3Server("benchs3", "bench", false, path.join(work, "s3-served"));
  await server.start();
  const target = `benchs3:${server.bucket}/composure`;
  const config = path.join(work, "s3-composure.yml");
  // upload: false: the backup stays local, so that `make sync` is the upload, timed alone.
  writeFileSync(config, `remote:\n  target: "${target}"\n  transfers: ${transfers}\n  upload: false\n`);
  const clientEnv = server.clientEnv();
  try {
    const env = { CONFIG: config, ...clientEnv };
    Object.assign(process.env, clientEnv); // the in-process download below reaches the server like the commands do
    const destination = path.join(work, "s3-backups");
    const backup = await composure.backup(service, destination, env);
    const runBytes = await duBytes(backup.runDir);
    say(`s3: backup run ${backup.runId}, ${mb(runBytes)} MB`);
    const rclone = (args: string[]) => run(rcloneBinary(), [...args, "--transfers", String(transfers)], { timeoutMs, env: process.env });

    const upload = await composure.sync(destination, env);
    say(`s3: composure upload (make sync) ${round(upload.seconds)} s`);
    await dropCaches();
    const rcloneUpload = (await rclone(["copy", backup.runDir, `benchs3:${server.bucket}/limit/${backup.runId}`])).seconds;
    say(`s3: rclone copy alone ${round(rcloneUpload)} s`);

    const fresh = path.join(work, "s3-fresh");
    const settings = parseConfig({ destination: fresh, remote: { target, transfers } }, []);
    await dropCaches();
    const started = process.hrtime.bigint();
    await fetchRemoteRun(settings, remoteFrom(settings)!, projectName, backup.runId);
    const download = seconds(started);
    say(`s3: composure download (restore FROM=remote's download step) ${round(download)} s`);
    if (readdirSync(path.join(fresh, projectName, backup.runId)).length === 0) throw new Error("the downloaded run is empty");
    await dropCaches();
    const rcloneDownload = (await rclone(["copy", `benchs3:${server.bucket}/limit/${backup.runId}`, path.join(work, "s3-rclone-down")])).seconds;
    say(`s3: rclone copy back alone ${round(rcloneDownload)} s`);
    return {
      rclone_version: (await versionOf(rcloneBinary(), ["version"])) ?? `not the pinned ${pinnedRcloneVersion}`,
      run_bytes: runBytes,
      upload_s: round(upload.seconds),
      rclone_upload_s: round(rcloneUpload),
      download_s: round(download),
      rclone_download_s: round(rcloneDownload),
    };
  } finally {
    for (const key of Object.keys(clientEnv)) delete process.env[key];
    await server.stop();
    for (const dir of ["s3-backups", "s3-fresh", "s3-rclone-down"]) removeDir(path.join(work, dir));
    removeDir(server.dir);
  }
}

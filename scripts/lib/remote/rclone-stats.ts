// rclone's transfer statistics for a progress line: rclone serves them on its remote-control API
// (core/stats: bytes done, total bytes) over a unix socket in a private folder (0700: no other
// user can reach the API, which acts with the remote's credentials), asked 5 times a second.
// rclone's output is left as it is: its messages are what a failure reports.
import { mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { startProgress } from "../log.ts";

export interface StatsWatch {
  /** rclone's flags for one attempt (a socket left by an earlier attempt is removed first). */
  flags(): string[];
  stop(): void;
}

/** A progress line named `label` fed by the rclone runs given flags(), until stop(). */
export function watchStats(label: string): StatsWatch {
  const progress = startProgress(label);
  const dir = mkdtempSync(path.join(os.tmpdir(), "composure-rc-"));
  const socket = path.join(dir, "rc.sock");
  let bytes = 0;
  progress.sample(() => bytes);
  const ask = () => {
    const request = http.request({ socketPath: socket, path: "/core/stats", method: "POST", agent: false }, (response) => {
      let body = "";
      response.on("data", (chunk: Buffer) => (body += chunk.toString("utf8")));
      response.on("end", () => {
        try {
          const stats = JSON.parse(body) as { bytes?: number; totalBytes?: number };
          bytes = stats.bytes ?? bytes;
          if (stats.totalBytes) progress.expect(stats.totalBytes);
        } catch {
          // not served yet, or ended meanwhile: the next answer will do
        }
      });
    });
    request.on("error", () => undefined);
    request.end();
  };
  const timer = setInterval(ask, 200).unref();
  return {
    flags() {
      rmSync(socket, { force: true });
      return ["--rc", "--rc-addr", socket, "--rc-no-auth"];
    },
    stop() {
      clearInterval(timer);
      progress.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

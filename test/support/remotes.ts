// Real rclone servers on 127.0.0.1 for the remote tests: `rclone serve webdav` and
// `rclone serve sftp` with a user and password, each serving a temporary folder. Clients reach
// them through RCLONE_CONFIG_<NAME>_* environment variables (the password obscured by rclone).
//
// S3Server is `rclone serve s3` of the pinned rclone (scripts/setup.sh builds it) with an access
// key: a real S3 API over HTTP, multipart uploads included, from the same binary composure runs,
// so no other registry or image is needed. SeaweedFS would be closer to a production object store
// (master, volume servers and an S3 gateway) but is a much larger build; MinIO's server is AGPL.
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { $, type ProcessPromise } from "zx";
import { pinnedRclonePath, pinnedRcloneVersion } from "../../scripts/lib/remote/rclone-binary.ts";
import { freePort, tempDir } from "./composure.ts";

async function waitForPort(port: number, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, "127.0.0.1", () => {
        socket.end();
        resolve(true);
      });
      socket.on("error", () => resolve(false));
    });
    if (open) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on 127.0.0.1:${port}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

export class RcloneServer {
  readonly dir = tempDir("remote-served");
  readonly user = "composure";
  readonly password = `pw-${process.pid}-${Date.now()}`;
  port = 0;
  private serving?: ProcessPromise;

  constructor(readonly protocol: "webdav" | "sftp", readonly remoteName: string) {}

  async start(): Promise<void> {
    this.port ||= await freePort();
    this.serving = $({ stdio: "ignore", quiet: true, nothrow: true })`exec rclone serve ${this.protocol} ${this.dir} --addr ${`127.0.0.1:${this.port}`} --user ${this.user} --pass ${this.password}`;
    await waitForPort(this.port);
  }

  async stop(): Promise<void> {
    this.serving?.child?.kill("SIGKILL"); // a no-op once it has exited
    await this.serving;
  }

  /** The environment that defines rclone remote `<remoteName>:` for this server. */
  clientEnv(password = this.password): Record<string, string> {
    const prefix = `RCLONE_CONFIG_${this.remoteName.toUpperCase()}_`;
    const obscured = $({ sync: true, quiet: true })`rclone obscure ${password}`.stdout.trim();
    const common = { [`${prefix}TYPE`]: this.protocol, [`${prefix}USER`]: this.user, [`${prefix}PASS`]: obscured };
    if (this.protocol === "webdav") return { ...common, [`${prefix}URL`]: `http://127.0.0.1:${this.port}` };
    return { ...common, [`${prefix}HOST`]: "127.0.0.1", [`${prefix}PORT`]: String(this.port), [`${prefix}SHELL_TYPE`]: "none" };
  }
}

/** The pinned rclone, or a clear failure naming the set-up step (S3 needs it: Debian's 1.60 has no serve s3). */
export function pinnedRclone(): string {
  const binary = pinnedRclonePath();
  if (!existsSync(binary)) throw new Error(`the S3 tests need rclone ${pinnedRcloneVersion} at ${binary}: run "make setup-test" (it builds it once)`);
  return binary;
}

/**
 * `rclone serve s3` on 127.0.0.1 serving a temporary folder; one bucket (a folder) made up front.
 * Keys shorter than a few characters are refused by the server, so these are long. With
 * `debugLog` the server logs every request to a file (multipartParts reads it); off for timing.
 */
export class S3Server {
  readonly logFile = path.join(tempDir("s3-log"), "serve-s3.log");
  readonly accessKey = `composure-access-${process.pid}`;
  readonly secretKey = `s3-secret-${process.pid}-${Date.now()}`;
  port = 0;
  private serving?: ProcessPromise;

  /** `dir`: the folder it serves (default: a new temporary one). */
  constructor(readonly remoteName: string, readonly bucket = "backups", private readonly debugLog = true, readonly dir = tempDir("s3-served")) {
    mkdirSync(path.join(this.dir, bucket), { recursive: true });
  }

  async start(): Promise<void> {
    this.port ||= await freePort();
    const args = ["serve", "s3", this.dir, "--addr", `127.0.0.1:${this.port}`, "--auth-key", `${this.accessKey},${this.secretKey}`];
    const logging = this.debugLog ? ["--log-level", "DEBUG", "--log-file", this.logFile] : [];
    this.serving = $({ stdio: "ignore", quiet: true, nothrow: true })`exec ${pinnedRclone()} ${[...args, ...logging]}`;
    await waitForPort(this.port);
  }

  /** How many parts the server received for `<bucket>/<key>` in multipart uploads (0: none). */
  multipartParts(key: string): number {
    const log = existsSync(this.logFile) ? readFileSync(this.logFile, "latin1") : "";
    return log.split("\n").filter((line) => line.includes(`serve s3: put multipart upload ${this.bucket} ${key} `)).length;
  }

  async stop(): Promise<void> {
    this.serving?.child?.kill("SIGKILL"); // a no-op once it has exited
    await this.serving;
  }

  /** The folder on disk behind `<bucket>/<key>`. */
  pathOf(key: string): string {
    return path.join(this.dir, this.bucket, key);
  }

  /** The environment that defines rclone remote `<remoteName>:` (type s3, provider Other) for this server. */
  clientEnv(secretKey = this.secretKey): Record<string, string> {
    const prefix = `RCLONE_CONFIG_${this.remoteName.toUpperCase()}_`;
    return {
      [`${prefix}TYPE`]: "s3",
      [`${prefix}PROVIDER`]: "Other",
      [`${prefix}ENDPOINT`]: `http://127.0.0.1:${this.port}`,
      [`${prefix}ACCESS_KEY_ID`]: this.accessKey,
      [`${prefix}SECRET_ACCESS_KEY`]: secretKey,
    };
  }
}

// Real rclone servers on 127.0.0.1 for the remote tests: `rclone serve webdav` and
// `rclone serve sftp` with a user and password, each serving a temporary folder. Clients reach
// them through RCLONE_CONFIG_<NAME>_* environment variables (the password obscured by rclone).
//
// S3Server is `rclone serve s3` of the pinned rclone (scripts/setup.sh builds it) with an access
// key: a real S3 API over HTTP, multipart uploads included, from the same binary composure runs,
// so no other registry or image is needed. SeaweedFS would be closer to a production object store
// (master, volume servers and an S3 gateway) but is a much larger build; MinIO's server is AGPL.
//
// AppendOnlySftpServer is OpenSSH's sshd with internal-sftp: rclone serve grants every user the
// same rights, and an append-only remote needs credentials that may add but not delete.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
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

export type SftpCredential = "backup" | "prune";

/**
 * One temporary folder served over SFTP by OpenSSH's sshd on 127.0.0.1 with two credentials, as
 * an append-only off-site server is set up for real: the backup key's sshd runs internal-sftp
 * with a deny list (no remove, rmdir, rename or posix-rename: nothing deleted, nothing renamed
 * away or over), the prune key's sshd with none. Plain rename is denied too although it refuses
 * an existing target (OpenSSH links then unlinks): moving a run's manifest away would hide the run.
 * Host and client keys come from ssh-keygen; each credential is an rclone config file defining
 * remote `<remoteName>:` (the same name, so one composure.yml target serves both), rooted at the
 * served folder. sshd runs as the user running the tests and lets only that user in by key.
 */
export class AppendOnlySftpServer {
  static readonly denied = "remove,rmdir,rename,posix-rename";
  readonly dir = tempDir("sftp-served");
  readonly ports: Record<SftpCredential, number> = { backup: 0, prune: 0 };
  private readonly keys = tempDir("sftp-keys");
  private readonly processes: ProcessPromise[] = [];

  constructor(readonly remoteName: string) {}

  async start(): Promise<void> {
    const sshd = "/usr/sbin/sshd"; // sshd re-executes itself: it wants its absolute path
    if (!existsSync(sshd)) throw new Error(`the append-only SFTP tests need OpenSSH's server at ${sshd}: run "make setup-test" (it installs openssh-server)`);
    // As root sshd wants its privilege separation folder, which the distribution's service makes at boot.
    if (process.getuid?.() === 0) mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });
    const hostKey = this.keygen("host");
    for (const credential of ["backup", "prune"] as const) {
      this.keygen(credential);
      this.ports[credential] ||= await freePort();
      const config = path.join(this.keys, `sshd-${credential}.conf`);
      writeFileSync(config, this.sshdConfig(credential, hostKey));
      const log = path.join(this.keys, `sshd-${credential}.log`);
      this.processes.push($({ stdio: "ignore", quiet: true, nothrow: true })`exec ${sshd} -D -f ${config} -E ${log}`);
      await waitForPort(this.ports[credential]);
    }
  }

  async stop(): Promise<void> {
    for (const serving of this.processes.splice(0)) {
      serving.child?.kill("SIGTERM"); // a no-op once it has exited
      await serving;
    }
  }

  /** An rclone config file defining remote `<remoteName>:` with one credential. */
  rcloneConfig(credential: SftpCredential): string {
    const file = path.join(this.keys, `rclone-${credential}.conf`);
    const lines = Object.entries(this.options(credential)).map(([key, value]) => `${key} = ${value}`);
    writeFileSync(file, `${[`[${this.remoteName}]`, ...lines].join("\n")}\n`, { mode: 0o600 });
    return file;
  }

  /** The environment that defines rclone remote `<remoteName>:` with one credential. */
  clientEnv(credential: SftpCredential): Record<string, string> {
    const prefix = `RCLONE_CONFIG_${this.remoteName.toUpperCase()}_`;
    return Object.fromEntries(Object.entries(this.options(credential)).map(([key, value]) => [`${prefix}${key.toUpperCase()}`, value]));
  }

  /** rclone's sftp options for one credential, the host key pinned. */
  private options(credential: SftpCredential): Record<string, string> {
    const knownHosts = path.join(this.keys, `known_hosts-${credential}`);
    writeFileSync(knownHosts, `[127.0.0.1]:${this.ports[credential]} ${readFileSync(path.join(this.keys, "host.pub"), "utf8")}`);
    return {
      type: "sftp", host: "127.0.0.1", port: String(this.ports[credential]), user: os.userInfo().username,
      key_file: path.join(this.keys, credential), known_hosts_file: knownHosts, shell_type: "none",
    };
  }

  /** An ed25519 key pair `<keys>/<name>` (and .pub), made once; returns the private key's path. */
  private keygen(name: string): string {
    const file = path.join(this.keys, name);
    if (!existsSync(file)) $({ sync: true, quiet: true })`ssh-keygen -q -t ed25519 -N ${""} -C ${`composure-test-${name}`} -f ${file}`;
    return file;
  }

  private sshdConfig(credential: SftpCredential, hostKey: string): string {
    const sftp = `internal-sftp -d ${this.dir}${credential === "backup" ? ` -P ${AppendOnlySftpServer.denied}` : ""}`;
    const root = process.getuid?.() === 0;
    return [
      `ListenAddress 127.0.0.1:${this.ports[credential]}`, `HostKey ${hostKey}`, "PidFile none",
      `AuthorizedKeysFile ${path.join(this.keys, `${credential}.pub`)}`, "AuthenticationMethods publickey", `AllowUsers ${os.userInfo().username}`,
      "PermitRootLogin prohibit-password",
      "StrictModes no", // the keys live under the world-writable temporary folder
      // A non-root sshd cannot read the shadow file and takes every account for locked, unless PAM decides.
      `UsePAM ${root ? "no" : "yes"}`,
      "AllowTcpForwarding no", "X11Forwarding no", "PrintMotd no",
      `Subsystem sftp ${sftp}`, `ForceCommand ${sftp}`,
    ].join("\n") + "\n";
  }
}

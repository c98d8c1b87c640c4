// Real rclone servers on 127.0.0.1 for the remote tests: `rclone serve webdav` and
// `rclone serve sftp` with a user and password, each serving a temporary folder. Clients reach
// them through RCLONE_CONFIG_<NAME>_* environment variables (the password obscured by rclone).
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import net from "node:net";
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
  private process?: ChildProcess;

  constructor(readonly protocol: "webdav" | "sftp", readonly remoteName: string) {}

  async start(): Promise<void> {
    this.port ||= await freePort();
    this.process = spawn("rclone", ["serve", this.protocol, this.dir, "--addr", `127.0.0.1:${this.port}`, "--user", this.user, "--pass", this.password], { stdio: "ignore" });
    await waitForPort(this.port);
  }

  async stop(): Promise<void> {
    if (!this.process || this.process.exitCode !== null) return;
    const exited = new Promise((resolve) => this.process!.on("exit", resolve));
    this.process.kill("SIGKILL");
    await exited;
  }

  /** The environment that defines rclone remote `<remoteName>:` for this server. */
  clientEnv(password = this.password): Record<string, string> {
    const prefix = `RCLONE_CONFIG_${this.remoteName.toUpperCase()}_`;
    const obscured = execFileSync("rclone", ["obscure", password], { encoding: "utf8" }).trim();
    const common = { [`${prefix}TYPE`]: this.protocol, [`${prefix}USER`]: this.user, [`${prefix}PASS`]: obscured };
    if (this.protocol === "webdav") return { ...common, [`${prefix}URL`]: `http://127.0.0.1:${this.port}` };
    return { ...common, [`${prefix}HOST`]: "127.0.0.1", [`${prefix}PORT`]: String(this.port), [`${prefix}SHELL_TYPE`]: "none" };
  }
}

// Test support: a real pseudo-terminal for what composure does only on a TTY (progress lines,
// interactive choices). tmux runs the command in a detached session of a fixed size; the test
// reads the rendered screen (carriage returns and erased lines already applied, as an operator
// sees it) and types keys.
import { $ } from "zx";

let sessions = 0;

export class Terminal {
  readonly name = `composure-test-${process.pid}-${++sessions}`;
  private readonly exitFile: string;

  /** Starts `command` (argv) in `cwd` with `env` added; its exit code lands in a file when it ends. */
  private constructor(readonly command: string[], readonly cwd: string) {
    this.exitFile = `/tmp/${this.name}.exit`;
  }

  static async start(command: string[], options: { cwd: string; env?: Record<string, string>; width?: number; height?: number }): Promise<Terminal> {
    const terminal = new Terminal(command, options.cwd);
    const exports = Object.entries(options.env ?? {}).map(([key, value]) => `export ${key}=${quote(value)}; `).join("");
    // The shell keeps the pane open after the command so that its last screen can still be read.
    const script = `${exports}${command.map(quote).join(" ")}; echo $? > ${terminal.exitFile}; sleep 86400`;
    await $({ quiet: true })`rm -f ${terminal.exitFile}`;
    await $({ quiet: true, cwd: options.cwd })`tmux new-session -d -s ${terminal.name} -x ${options.width ?? 200} -y ${options.height ?? 50} sh -c ${script}`;
    return terminal;
  }

  /** The visible screen plus scrollback, lines joined by newlines, trailing blanks trimmed. */
  async screen(): Promise<string> {
    const captured = await $({ quiet: true })`tmux capture-pane -p -J -S -2000 -t ${this.name}`;
    return captured.stdout.replace(/\s+$/, "");
  }

  /** Types text or tmux key names (Enter, Down, Space, C-c ...). */
  async keys(...keys: string[]): Promise<void> {
    await $({ quiet: true })`tmux send-keys -t ${this.name} ${keys}`;
  }

  /** Polls the screen until `pattern` matches; throws with the screen after `timeoutMs`. */
  async waitFor(pattern: RegExp, timeoutMs = 60_000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const screen = await this.screen();
      const match = screen.match(pattern);
      if (match) return match;
      if (Date.now() > deadline) throw new Error(`the terminal never showed ${pattern} within ${timeoutMs} ms; screen:\n${screen}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** The command's exit code once it ended (polled), or a timeout error with the screen. */
  async exitCode(timeoutMs = 600_000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const written = await $({ quiet: true, nothrow: true })`cat ${this.exitFile}`;
      if (written.exitCode === 0 && written.stdout.trim()) return Number(written.stdout.trim());
      if (Date.now() > deadline) throw new Error(`${this.command.join(" ")} did not end within ${timeoutMs} ms; screen:\n${await this.screen()}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  async close(): Promise<void> {
    await $({ quiet: true, nothrow: true })`tmux kill-session -t ${this.name}`;
    await $({ quiet: true })`rm -f ${this.exitFile}`;
  }
}

/** Single-quoted for sh. */
function quote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

// Human lines with a live progress line on a TTY; plain timestamped lines otherwise (cron).
// Everything goes to stderr so that stdout stays free for --json output.

const isTty = Boolean(process.stderr.isTTY);

function timestamp(): string {
  return new Date().toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

let progressShown = false;

function clearProgress(): void {
  if (progressShown) process.stderr.write("\r\x1b[K");
  progressShown = false;
}

function write(level: string, message: string): void {
  clearProgress();
  const prefix = isTty ? (level === "info" ? "" : `${level}: `) : `${timestamp()} ${level.padEnd(5)} `;
  process.stderr.write(`${prefix}${message}\n`);
}

export const log = {
  info: (message: string) => write("info", message),
  warn: (message: string) => write("warn", message),
  error: (message: string) => write("error", message),
};

/** Digits grouped by thousands, for messages. */
export const formatCount = (count: number) => count.toLocaleString("en-US");

export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

export function formatSeconds(seconds: number): string {
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const minutes = Math.floor(seconds / 60);
  return `${minutes} min ${Math.round(seconds % 60)} s`;
}

/** Transfers in progress: on a TTY one line shows them all (captures run side by side). */
const active = new Set<{ line(): string }>();
let lastDraw = 0;

function drawProgress(): void {
  const now = performance.now();
  if (!isTty || now - lastDraw < 200 || active.size === 0) return;
  lastDraw = now;
  process.stderr.write(`\r\x1b[K${[...active].map((transfer) => transfer.line()).join(" | ")}`);
  progressShown = true;
}

/**
 * Tracks bytes of one transfer. On a TTY the progress line (bytes, rate, ETA when the total is
 * known) is redrawn at most 5 times a second; elsewhere it stays silent and `done` prints one
 * summary line.
 */
export function startProgress(label: string, expectedBytes?: number) {
  const started = performance.now();
  let bytes = 0;
  const transfer = {
    line() {
      const seconds = (performance.now() - started) / 1000;
      const rate = bytes / Math.max(seconds, 0.001);
      const eta = expectedBytes && rate > 0 ? ` ETA ${formatSeconds(Math.max(expectedBytes - bytes, 0) / rate)}` : "";
      return `${label}: ${formatBytes(bytes)} ${formatBytes(rate)}/s${eta}`;
    },
  };
  active.add(transfer);
  return {
    add(count: number) {
      bytes += count;
      drawProgress();
    },
    done(summary: string) {
      active.delete(transfer);
      const seconds = (performance.now() - started) / 1000;
      log.info(`${label}: ${summary} in ${formatSeconds(seconds)}`);
    },
  };
}

// Human lines with a live progress line on a TTY; plain timestamped lines otherwise (cron).
// Everything goes to stderr so that stdout stays free for --json output.

const isTty = Boolean(process.stderr.isTTY);
/** True when progress lines are drawn (stderr is a terminal): what feeds them only needs to run then. */
export const showsProgress = isTty;

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

/** What a progress line says of one transfer at one moment. */
export interface ProgressState {
  label: string;
  /** Bytes of the source read so far; undefined when they cannot be counted (the elapsed time is shown instead). */
  bytes: number | undefined;
  /** The source's size, when known. */
  total?: number;
  seconds: number;
}

/**
 * One transfer's part of the progress line: `data: 412.0 MiB of 1.0 GiB (40%) 950.3 MiB/s, 0.6 s left`.
 * The share stops at 100% (a size measured beside the capture can be a little short), and the
 * time left is shown only while the rate is known and the size not reached.
 */
export function progressLine({ label, bytes, total, seconds }: ProgressState): string {
  if (bytes === undefined) return `${label}: ${formatSeconds(seconds)}`;
  const rate = seconds > 0 ? bytes / seconds : 0;
  const share = total ? ` of ${formatBytes(total)} (${Math.floor(Math.min(bytes / total, 1) * 100)}%)` : "";
  const left = total && rate > 0 && bytes < total ? `, ${formatSeconds((total - bytes) / rate)} left` : "";
  return `${label}: ${formatBytes(bytes)}${share} ${formatBytes(rate)}/s${left}`;
}

/** Transfers in progress: on a TTY one line shows them all (captures run side by side), redrawn 5 times a second. */
const active = new Set<{ line(): string }>();
let redraw: NodeJS.Timeout | undefined;

function drawProgress(): void {
  if (active.size === 0) return;
  const line = [...active].map((transfer) => transfer.line()).join(" | ");
  // Longer than the terminal, the line would wrap, and \r would redraw only its last row.
  const width = (process.stderr.columns || 200) - 1;
  process.stderr.write(`\r\x1b[K${line.length > width ? `${line.slice(0, width - 1)}…` : line}`);
  progressShown = true;
}

function track(transfer: { line(): string }): void {
  active.add(transfer);
  if (isTty && !redraw) redraw = setInterval(drawProgress, 200).unref();
}

function untrack(transfer: { line(): string }): void {
  active.delete(transfer);
  if (active.size > 0) return;
  clearInterval(redraw);
  redraw = undefined;
  clearProgress(); // no stale line once nothing is under way
}

/** One transfer's progress, from startProgress. */
export interface Progress {
  /** `count` more bytes of the source read. */
  add(count: number): void;
  /** Reads the bytes of the source read so far, instead of `add` (a program's read position, say); undefined: not known now. */
  sample(read: () => number | undefined): void;
  /** The source's size, once it is known (measured beside the transfer, say). */
  expect(total: number): void;
  /**
   * Ends the transfer: one line, `<label>: <summary> in <time>`; on a TTY with the size known it
   * starts with `<size> read (100%), `, the progress line's last state (the source was read whole).
   */
  done(summary: string): void;
  /** Ends the transfer without a line (it failed: its error says why); does nothing after `done`. */
  stop(): void;
}

/**
 * Tracks the bytes read of one transfer's source. On a TTY the progress line shows them against
 * the source's size when known (share done, rate, time left); elsewhere nothing is shown until
 * `done` prints one summary line.
 */
export function startProgress(label: string, expectedBytes?: number): Progress {
  const started = performance.now();
  let counted = 0;
  let total = expectedBytes;
  let sampler: (() => number | undefined) | undefined;
  let sampled: number | undefined;
  const bytes = () => {
    if (!sampler) return counted;
    sampled = sampler() ?? sampled; // a program that ended keeps its last count
    return sampled;
  };
  const transfer = { line: () => progressLine({ label, bytes: bytes(), total, seconds: (performance.now() - started) / 1000 }) };
  track(transfer);
  return {
    add(count) {
      counted += count;
    },
    sample(read) {
      sampler = read;
    },
    expect(size) {
      total = size;
    },
    stop() {
      untrack(transfer);
    },
    done(summary) {
      untrack(transfer);
      const whole = isTty && total ? `${formatBytes(total)} read (100%), ` : "";
      log.info(`${label}: ${whole}${summary} in ${formatSeconds((performance.now() - started) / 1000)}`);
    },
  };
}

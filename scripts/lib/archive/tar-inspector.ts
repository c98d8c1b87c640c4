/**
 * Streaming tar inspector: a pass-through Transform that parses every tar
 * header (ustar, GNU long names, PAX) while the bytes flow on unchanged to a
 * real `tar x` downstream. File data is never copied, only counted and
 * skipped; just the 512-byte header blocks (and the small PAX/GNU meta
 * entries) are looked at, so memory stays flat.
 *
 * With `validate` on, an unsafe entry is refused before any byte of its
 * header (or of the meta headers that belong to it) goes downstream.
 * Where tar readers disagree about a header (GNU tar vs busybox tar), every
 * name a reader might use is validated, and ambiguous headers are refused.
 *
 * Names are "byte strings": raw bytes decoded as latin1 (one char per byte).
 */
import { Transform, Writable, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';

export type EntryType =
  | 'file' | 'hardlink' | 'symlink' | 'directory'
  | 'char-device' | 'block-device' | 'fifo' | 'other';

export interface TarEntry {
  name: string;
  type: EntryType;
  size: number;
  mode: number;
  uid: number;
  gid: number;
  /** seconds since the epoch */
  mtime: number;
  linkName: string;
}

export interface TarSummary {
  entries: number;
  files: number;
  directories: number;
  symlinks: number;
  hardlinks: number;
  dataBytes: number;
  archiveBytes: number;
}

export interface InspectorOptions {
  /** Refuse unsafe entries (default true). */
  validate?: boolean;
  /** Called for each real entry, after validation. */
  onEntry?: (entry: TarEntry) => void;
  /**
   * Entries (with their meta headers and data) for which this is true are dropped from the
   * stream; the name is relative, without "./". A hard link to a dropped entry is refused.
   */
  exclude?: (name: string) => boolean;
  /**
   * Every byte accounted for (an export file, written by GNU tar): the padding after an entry's
   * data or an extended header must be zeros, and a header's checksum field must read as GNU tar
   * writes it (six octal digits, NUL, space), so that no byte a reader skips can change unseen.
   * Off by default: other writers leave garbage in padding or write the field otherwise.
   */
  strict?: boolean;
}

/** Bad checksum, garbage, truncated archive. */
export class TarFormatError extends Error {
  override name = 'TarFormatError';
}

/** An entry that must not be extracted. */
export class TarSafetyError extends Error {
  override name = 'TarSafetyError';
  constructor(readonly entryName: string, readonly reason: string) {
    super(`unsafe entry "${displayName(entryName)}": ${reason}`);
  }
}

const BLOCK = 512;
const ZERO_BLOCK = Buffer.alloc(BLOCK);
const POSIX_MAGIC = Buffer.from('ustar\0', 'latin1');
/** Cap on meta headers held back before an entry (paths are < 4 KiB on Linux). */
const MAX_HELD_BYTES = 1 << 20;

// ---------------------------------------------------------------------------
// Display

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Decodes a byte-string name as UTF-8 for messages; invalid bytes and control characters are escaped. */
export function displayName(name: string): string {
  const bytes = Buffer.from(name, 'latin1');
  let out = '';
  for (let i = 0; i < bytes.length;) {
    const length = utf8SequenceLength(bytes[i]!);
    const text = length > 0 ? tryDecode(bytes.subarray(i, i + length)) : undefined;
    if (text === undefined) {
      out += `\\x${hex(bytes[i]!)}`;
      i += 1;
    } else {
      out += escapeChar(text);
      i += length;
    }
  }
  return out;
}

function utf8SequenceLength(lead: number): number {
  if (lead < 0x80) return 1;
  if (lead >= 0xc2 && lead <= 0xdf) return 2;
  if (lead >= 0xe0 && lead <= 0xef) return 3;
  if (lead >= 0xf0 && lead <= 0xf4) return 4;
  return 0;
}

function tryDecode(bytes: Uint8Array): string | undefined {
  try {
    return utf8.decode(bytes);
  } catch {
    return undefined;
  }
}

const NAMED_ESCAPES: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t', '\\': '\\\\', '"': '\\"' };

// C0/C1 controls, DEL, and bidi/invisible format characters that could disguise a name in a log.
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]/u;

function escapeChar(char: string): string {
  const named = NAMED_ESCAPES[char];
  if (named !== undefined) return named;
  if (!UNPRINTABLE.test(char)) return char;
  const code = char.codePointAt(0)!;
  return code < 0x100 ? `\\x${hex(code)}` : `\\u${code.toString(16).padStart(4, '0')}`;
}

function hex(byte: number): string {
  return byte.toString(16).padStart(2, '0');
}

// ---------------------------------------------------------------------------
// Header parsing

interface Header {
  offset: number;
  typeflag: string;
  /** The name as a reader of this header's format sees it. */
  name: string;
  /** Another reading of the name fields: busybox joins the prefix even outside POSIX ustar. */
  altNames: string[];
  linkName: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
}

function parseHeader(block: Buffer, offset: number): Header {
  if (!checksumMatches(block)) {
    throw new TarFormatError(`corrupt tar header at byte ${offset} (checksum mismatch)`);
  }
  const nameField = cString(block, 0, 100);
  const prefix = cString(block, 345, 155);
  const prefixed = prefix === '' ? nameField : `${prefix}/${nameField}`;
  // Only POSIX ustar has a prefix field (GNU format keeps times there).
  const posix = block.compare(POSIX_MAGIC, 0, 6, 257, 263) === 0;
  return {
    offset,
    typeflag: String.fromCharCode(block[156]!),
    name: posix ? prefixed : nameField,
    altNames: posix || prefix === '' ? [] : [prefixed],
    linkName: cString(block, 157, 100),
    mode: readNumber(block, 100, 8, 'mode', offset) & 0o7777,
    uid: readNumber(block, 108, 8, 'uid', offset),
    gid: readNumber(block, 116, 8, 'gid', offset),
    size: readNumber(block, 124, 12, 'size', offset),
    mtime: readNumber(block, 136, 12, 'mtime', offset),
  };
}

/** Sum of the header bytes with the checksum field counted as spaces; old tars summed signed bytes. */
function checksumMatches(block: Buffer): boolean {
  let unsigned = 8 * 0x20;
  let highBytes = 0;
  for (let i = 0; i < BLOCK; i++) {
    if (i === 148) i = 156;
    const byte = block[i]!;
    unsigned += byte;
    if (byte >= 0x80) highBytes++;
  }
  const stored = parseOctal(block, 148, 8);
  return stored === unsigned || stored === unsigned - 0x100 * highBytes;
}

/** The checksum field as GNU tar writes it: six octal digits of the stored sum, NUL, space. */
function hasGnuChecksumField(block: Buffer): boolean {
  const stored = parseOctal(block, 148, 8);
  return stored !== undefined && block.toString('latin1', 148, 156) === `${stored.toString(8).padStart(6, '0')}\0 `;
}

function readNumber(block: Buffer, start: number, length: number, label: string, offset: number): number {
  const value = block[start]! & 0x80 ? parseBase256(block, start, length) : parseOctal(block, start, length);
  const negativeAllowed = label === 'mtime';
  if (value === undefined || !Number.isSafeInteger(value) || (value < 0 && !negativeAllowed)) {
    throw new TarFormatError(`invalid ${label} field in tar header at byte ${offset}`);
  }
  return value;
}

/** Octal digits after optional spaces, ended by NUL, space or the field end (as GNU and busybox read it). */
function parseOctal(block: Buffer, start: number, length: number): number | undefined {
  const end = start + length;
  let i = start;
  while (i < end && block[i] === 0x20) i++;
  let value = 0;
  for (; i < end && block[i]! >= 0x30 && block[i]! <= 0x37; i++) value = value * 8 + block[i]! - 0x30;
  return i === end || block[i] === 0 || block[i] === 0x20 ? value : undefined;
}

/** GNU base-256: high bit set, the rest a big-endian two's-complement number (bit 0x40 is the sign). */
function parseBase256(block: Buffer, start: number, length: number): number {
  const first = block[start]!;
  let value = (first & 0x3f) - (first & 0x40);
  for (let i = start + 1; i < start + length; i++) value = value * 256 + block[i]!;
  return value;
}

/** A NUL-terminated field as a byte string: C readers stop at the first NUL. */
function cString(buffer: Buffer, start: number, length: number): string {
  if (buffer[start] === 0) return '';
  const nul = buffer.indexOf(0, start);
  const end = nul === -1 || nul > start + length ? start + length : nul;
  return buffer.toString('latin1', start, end);
}

// ---------------------------------------------------------------------------
// PAX records: "<length> <keyword>=<value>\n", length counting the whole record

function parsePax(body: Buffer, offset: number, into: Map<string, string>): void {
  for (let pos = 0; pos < body.length;) {
    const space = body.indexOf(0x20, pos);
    const lengthText = space === -1 ? '' : body.toString('latin1', pos, space);
    const end = pos + Number(lengthText);
    const equals = body.indexOf(0x3d, space + 1);
    const value = body.toString('latin1', equals + 1, end - 1);
    const wellFormed = /^[1-9]\d*$/.test(lengthText) && end <= body.length && body[end - 1] === 0x0a
      && equals !== -1 && equals < end && !value.includes('\0');
    if (!wellFormed) throw new TarFormatError(`invalid PAX extended header at byte ${offset}`);
    into.set(body.toString('latin1', space + 1, equals), value);
    pos = end;
  }
}

function paxNumber(key: string, value: string, offset: number): number {
  const pattern = key === 'mtime' ? /^-?\d+(\.\d+)?$/ : /^\d+$/;
  const seconds = Math.floor(Number(value));
  if (!pattern.test(value) || !Number.isSafeInteger(seconds)) {
    throw new TarFormatError(`invalid PAX ${key} value for the entry at byte ${offset}`);
  }
  return seconds;
}

// ---------------------------------------------------------------------------
// Entry types and validation

const META_TYPES = new Set(['x', 'g', 'L', 'K']);

const TYPES: Record<string, EntryType> = {
  '0': 'file', '\0': 'file', '7': 'file', '1': 'hardlink', '2': 'symlink',
  '3': 'char-device', '4': 'block-device', '5': 'directory', '6': 'fifo',
};

const UNSUPPORTED: Record<string, string> = {
  S: 'GNU sparse file', D: 'GNU incremental dump directory', M: 'GNU multi-volume continuation',
  V: 'GNU volume label', N: 'old GNU long file names',
};

function entryType(typeflag: string, name: string, sparse: boolean): EntryType {
  const type = sparse ? 'other' : TYPES[typeflag] ?? 'other';
  // Pre-POSIX tars mark directories with a trailing slash; GNU and busybox both honour it.
  return type === 'file' && name.endsWith('/') ? 'directory' : type;
}

function describeTypeflag(typeflag: string, sparse: boolean): string {
  if (sparse) return 'GNU sparse file (PAX)';
  const printable = /^[\x21-\x7e]$/.test(typeflag) ? `'${typeflag}'` : `0x${hex(typeflag.charCodeAt(0))}`;
  const known = UNSUPPORTED[typeflag];
  return known ? `${printable} (${known})` : printable;
}

/** Path components with '', '.' dropped, so 'a//./b/' and './a/b' compare equal. */
function components(path: string): string[] {
  const parts = path.split('/');
  return parts.includes('') || parts.includes('.') ? parts.filter(isNamedPart) : parts;
}

function isNamedPart(part: string): boolean {
  return part !== '' && part !== '.';
}

function pathKey(path: string): string {
  return components(path).join('/');
}

/** Returns why `path` is unsafe, phrased with `subject` ("path", "hard link target ..."). */
function pathProblem(subject: string, path: string, symlinks: Set<string>, matchSelf: boolean): string | undefined {
  if (path.startsWith('/')) return `${subject} is absolute`;
  const parts = components(path);
  if (parts.includes('..')) return `${subject} contains a '..' component`;
  if (symlinks.size === 0) return undefined;
  let key = '';
  for (let depth = 0; depth <= parts.length; depth++) {
    key = depth === 0 ? '' : depth === 1 ? parts[0]! : `${key}/${parts[depth - 1]}`;
    if (!symlinks.has(key)) continue;
    if (depth < parts.length) return `${subject} lies under the earlier symlink "${displayName(key)}"`;
    if (matchSelf) return `${subject} replaces the earlier symlink "${displayName(key)}"`;
  }
  return undefined;
}

interface Resolved {
  entry: TarEntry;
  /** Every name some tar reader could extract this entry to. */
  names: string[];
  /** Every link target some tar reader could use. */
  links: string[];
  typeLabel: string;
}

function findViolation(resolved: Resolved, symlinks: Set<string>): TarSafetyError | undefined {
  const { entry } = resolved;
  for (const name of resolved.names) {
    const problem = pathProblem('path', name, symlinks, true);
    if (problem) return new TarSafetyError(name, problem);
  }
  const reason = typeProblem(resolved) ?? linkProblem(resolved, symlinks);
  return reason === undefined ? undefined : new TarSafetyError(entry.name, reason);
}

function typeProblem({ entry, typeLabel }: Resolved): string | undefined {
  if (entry.type === 'char-device' || entry.type === 'block-device') return 'device files are not restored';
  if (entry.type === 'other') return `unsupported entry type ${typeLabel}`;
  // GNU tar and busybox skip different amounts of data after non-file entries: refuse the ambiguity.
  if (entry.type !== 'file' && entry.size > 0) return `${entry.type} entry with ${entry.size} data bytes`;
  return undefined;
}

function linkProblem({ entry, links }: Resolved, symlinks: Set<string>): string | undefined {
  if (entry.type !== 'hardlink') return undefined;
  for (const link of links) {
    const problem = pathProblem(`hard link target "${displayName(link)}"`, link, symlinks, false);
    if (problem) return problem;
  }
  return undefined;
}

/** Which entry types are followed by `size` data bytes (GNU tar's reading). */
function hasData(type: EntryType): boolean {
  return type !== 'directory' && type !== 'hardlink';
}

/** Distinct non-empty values, in order. */
function distinct(...values: (string | undefined)[]): string[] {
  const result: string[] = [];
  for (const value of values) if (value && !result.includes(value)) result.push(value);
  return result;
}

function hasSparseKey(records: Map<string, string>): boolean {
  for (const key of records.keys()) if (key.startsWith('GNU.sparse.')) return true;
  return false;
}

function roundUp(size: number): number {
  return Math.ceil(size / BLOCK) * BLOCK;
}

// ---------------------------------------------------------------------------
// The stream

type Mode = 'header' | 'data' | 'meta' | 'end';

/** A hard link whose target was left out of the stream: it could not be extracted. */
export class TarExcludedLinkError extends Error {
  override name = 'TarExcludedLinkError';
}

interface Pending {
  pax: Map<string, string>;
  longName?: string;
  longLink?: string;
}

interface MetaInProgress {
  typeflag: string;
  offset: number;
  body: Buffer;
  filled: number;
}

class TarInspector extends Transform {
  readonly #validate: boolean;
  readonly #onEntry: ((entry: TarEntry) => void) | undefined;
  readonly #exclude: ((name: string) => boolean) | undefined;
  readonly #strict: boolean;
  /** Padding bytes at the end of the current entry's data. */
  #padding = 0;
  /** The current entry's data is dropped (excluded), not passed on. */
  #dropping = false;
  #mode: Mode = 'header';
  /** Archive offset of the first byte of the current chunk. */
  #offset = 0;
  /** A header block split across chunks. */
  readonly #partial = Buffer.alloc(BLOCK);
  #partialFill = 0;
  /** Bytes (data plus padding) left in the current entry or meta entry. */
  #remaining = 0;
  #meta: MetaInProgress | undefined;
  /** Meta header bytes held back until the entry they describe is accepted. */
  #held: Buffer[] = [];
  #heldBytes = 0;
  #pending: Pending = { pax: new Map() };
  readonly #globalPax = new Map<string, string>();
  /** Normalised names of symlinks seen so far. */
  readonly #symlinks = new Set<string>();
  readonly #summary: TarSummary = {
    entries: 0, files: 0, directories: 0, symlinks: 0, hardlinks: 0, dataBytes: 0, archiveBytes: 0,
  };

  constructor(options: InspectorOptions) {
    super();
    this.#validate = options.validate ?? true;
    this.#onEntry = options.onEntry;
    this.#exclude = options.exclude;
    this.#strict = options.strict ?? false;
  }

  get summary(): TarSummary {
    return { ...this.#summary, archiveBytes: this.#offset };
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    try {
      this.#consume(chunk);
      done();
    } catch (error) {
      done(error as Error);
    }
  }

  override _flush(done: TransformCallback): void {
    if (this.#mode === 'end') return done();
    const { entries } = this.#summary;
    done(new TarFormatError(`archive is truncated: ended after ${entries} entries at byte ${this.#offset}`));
  }

  /**
   * Walks one chunk. Accepted bytes chunk[from, pos) are pushed as one slice
   * whenever something must be held back, so the common case is one push per chunk.
   */
  #consume(chunk: Buffer): void {
    let pos = 0;
    let from = 0;
    const pushAccepted = (end: number) => {
      if (end > from) this.push(from === 0 && end === chunk.length ? chunk : chunk.subarray(from, end));
      from = end;
    };
    while (pos < chunk.length) {
      if (this.#mode === 'data' && this.#dropping) {
        pushAccepted(pos);
        pos = from = this.#skipData(chunk, pos);
      } else if (this.#mode === 'data') {
        pos = this.#skipData(chunk, pos);
      } else if (this.#mode === 'end') {
        pos = this.#checkTrailer(chunk, pos);
      } else if (this.#mode === 'meta') {
        pushAccepted(pos);
        pos = from = this.#collectMeta(chunk, pos);
      } else {
        const start = pos;
        const copied = this.#partialFill > 0 || chunk.length - pos < BLOCK;
        let block: Buffer | undefined;
        if (copied) {
          const count = Math.min(BLOCK - this.#partialFill, chunk.length - pos);
          block = this.#fillPartial(chunk, pos, count);
          pos += count;
          pushAccepted(start);
          from = pos; // this chunk's part of the header is emitted as `block` instead
          if (block === undefined) continue;
        } else {
          block = chunk.subarray(pos, pos + BLOCK);
          pos += BLOCK;
        }
        let kind: 'entry' | 'meta' | 'end' | 'dropped';
        try {
          kind = this.#readBlock(block, this.#offset + pos - BLOCK);
        } catch (error) {
          pushAccepted(start); // everything before the refused header may go on
          throw error;
        }
        if (kind === 'meta') {
          pushAccepted(start);
          from = pos;
          this.#hold(block);
        } else if (kind === 'dropped') {
          pushAccepted(start);
          from = pos;
          this.#held = [];
          this.#heldBytes = 0;
        } else if (copied || this.#held.length > 0) {
          pushAccepted(start);
          from = pos;
          this.#releaseHeld();
          this.push(block);
        }
      }
    }
    pushAccepted(pos);
    this.#offset += chunk.length;
  }

  /** Adds header bytes to the split-header buffer; returns a copy of the block once complete. */
  #fillPartial(chunk: Buffer, pos: number, count: number): Buffer | undefined {
    chunk.copy(this.#partial, this.#partialFill, pos, pos + count);
    this.#partialFill += count;
    if (this.#partialFill < BLOCK) return undefined;
    this.#partialFill = 0;
    return Buffer.from(this.#partial);
  }

  #skipData(chunk: Buffer, pos: number): number {
    const count = Math.min(this.#remaining, chunk.length - pos);
    if (this.#strict) this.#checkPadding(chunk, pos, count);
    this.#remaining -= count;
    if (this.#remaining === 0) this.#mode = 'header';
    return pos + count;
  }

  #checkPadding(chunk: Buffer, pos: number, count: number): void {
    const dataLeft = this.#remaining - this.#padding;
    this.#checkZeros(chunk, pos + Math.max(dataLeft, 0), pos + count);
  }

  /** chunk[from, to) is padding: zeros only. */
  #checkZeros(chunk: Buffer, from: number, to: number): void {
    for (let i = from; i < to; i++) {
      if (chunk[i] !== 0) throw new TarFormatError(`non-zero padding after an entry's data at byte ${this.#offset + i}`);
    }
  }

  /** After the end-of-archive marker only zeros may follow (busybox would read on after a lone zero block). */
  #checkTrailer(chunk: Buffer, pos: number): number {
    for (let i = pos; i < chunk.length; i++) {
      if (chunk[i] !== 0) {
        throw new TarFormatError(`unexpected data after the end-of-archive marker at byte ${this.#offset + i}`);
      }
    }
    return chunk.length;
  }

  #readBlock(block: Buffer, offset: number): 'entry' | 'meta' | 'end' | 'dropped' {
    if (block.equals(ZERO_BLOCK)) {
      if (this.#held.length > 0) throw new TarFormatError(`extended header without an entry at byte ${offset}`);
      this.#mode = 'end';
      return 'end';
    }
    const header = parseHeader(block, offset);
    if (this.#strict && !hasGnuChecksumField(block)) throw new TarFormatError(`tar header at byte ${offset} has its checksum in an unexpected form`);
    if (META_TYPES.has(header.typeflag)) {
      this.#startMeta(header);
      return 'meta';
    }
    return this.#acceptEntry(header);
  }

  #acceptEntry(header: Header): 'entry' | 'dropped' {
    const resolved = this.#resolve(header);
    const { entry } = resolved;
    this.#dropping = this.#isExcluded(entry);
    if (this.#dropping) {
      this.#startData(entry);
      return 'dropped';
    }
    if (this.#validate) {
      const violation = findViolation(resolved, this.#symlinks);
      if (violation) throw violation;
    }
    this.#rememberSymlink(resolved);
    this.#count(entry);
    this.#onEntry?.(entry);
    this.#startData(entry);
    return 'entry';
  }

  #startData(entry: TarEntry): void {
    const size = hasData(entry.type) ? entry.size : 0;
    this.#remaining = roundUp(size);
    this.#padding = this.#remaining - size;
    this.#mode = this.#remaining > 0 ? 'data' : 'header';
  }

  #isExcluded(entry: TarEntry): boolean {
    if (!this.#exclude) return false;
    if (this.#exclude(entry.name)) return true;
    if (entry.type === 'hardlink' && this.#exclude(entry.linkName)) {
      throw new TarExcludedLinkError(`"${displayName(entry.name)}" is a hard link to "${displayName(entry.linkName)}", which exclude_paths leaves out: exclude both, or neither`);
    }
    return false;
  }

  /** Applies pending GNU long names and PAX records (per-entry over global) to a header. */
  #resolve(header: Header): Resolved {
    const { pax, longName, longLink } = this.#pending;
    if (pax.size > 0 || longName !== undefined || longLink !== undefined) this.#pending = { pax: new Map() };
    const rawName = this.#paxValue(pax, 'path') ?? longName ?? header.name;
    if (rawName === '') throw new TarFormatError(`tar entry without a name at byte ${header.offset}`);
    const sparse = hasSparseKey(pax) || hasSparseKey(this.#globalPax);
    const linkName = this.#paxValue(pax, 'linkpath') ?? longLink ?? header.linkName;
    const entry: TarEntry = {
      name: rawName.startsWith('./') ? rawName.slice(2) || '.' : rawName,
      type: entryType(header.typeflag, rawName, sparse),
      size: this.#paxNumber(pax, 'size', header.size, header.offset),
      mode: header.mode,
      uid: this.#paxNumber(pax, 'uid', header.uid, header.offset),
      gid: this.#paxNumber(pax, 'gid', header.gid, header.offset),
      mtime: this.#paxNumber(pax, 'mtime', header.mtime, header.offset),
      linkName,
    };
    return {
      entry,
      names: distinct(rawName, pax.get('path'), this.#globalPax.get('path'), longName, header.name, ...header.altNames),
      links: distinct(linkName, pax.get('linkpath'), this.#globalPax.get('linkpath'), longLink, header.linkName),
      typeLabel: describeTypeflag(header.typeflag, sparse),
    };
  }

  /** The per-entry PAX value, else the global one; an empty per-entry value cancels the global one. */
  #paxValue(pax: Map<string, string>, key: string): string | undefined {
    return pax.has(key) ? pax.get(key) || undefined : this.#globalPax.get(key);
  }

  #paxNumber(pax: Map<string, string>, key: string, fallback: number, offset: number): number {
    const text = this.#paxValue(pax, key);
    return text === undefined ? fallback : paxNumber(key, text, offset);
  }

  /** Symlinks, and hard links to symlinks (which are symlinks too), guard the paths beneath them. */
  #rememberSymlink({ entry, names, links }: Resolved): void {
    if (entry.type !== 'symlink' && !(entry.type === 'hardlink' && this.#isSymlink(links))) return;
    for (const name of names) this.#symlinks.add(pathKey(name));
  }

  #isSymlink(paths: string[]): boolean {
    for (const path of paths) if (this.#symlinks.has(pathKey(path))) return true;
    return false;
  }

  #count(entry: TarEntry): void {
    const summary = this.#summary;
    summary.entries += 1;
    summary.dataBytes += hasData(entry.type) ? entry.size : 0;
    if (entry.type === 'file') summary.files += 1;
    else if (entry.type === 'directory') summary.directories += 1;
    else if (entry.type === 'symlink') summary.symlinks += 1;
    else if (entry.type === 'hardlink') summary.hardlinks += 1;
  }

  #startMeta(header: Header): void {
    const padded = roundUp(header.size);
    if (this.#heldBytes + BLOCK + padded > MAX_HELD_BYTES) {
      throw new TarFormatError(`extended headers before the entry at byte ${header.offset} exceed ${MAX_HELD_BYTES} bytes`);
    }
    this.#meta = { typeflag: header.typeflag, offset: header.offset, body: Buffer.alloc(header.size), filled: 0 };
    this.#remaining = padded;
    if (padded === 0) this.#finishMeta();
    else this.#mode = 'meta';
  }

  #collectMeta(chunk: Buffer, pos: number): number {
    const meta = this.#meta!;
    const count = Math.min(this.#remaining, chunk.length - pos);
    const bodyCount = Math.min(count, meta.body.length - meta.filled);
    chunk.copy(meta.body, meta.filled, pos, pos + bodyCount);
    if (this.#strict) this.#checkZeros(chunk, pos + bodyCount, pos + count);
    meta.filled += bodyCount;
    this.#hold(chunk.subarray(pos, pos + count));
    this.#remaining -= count;
    if (this.#remaining === 0) this.#finishMeta();
    return pos + count;
  }

  #finishMeta(): void {
    const { typeflag, body, offset } = this.#meta!;
    this.#meta = undefined;
    this.#mode = 'header';
    if (typeflag === 'L') this.#pending.longName = cString(body, 0, body.length);
    else if (typeflag === 'K') this.#pending.longLink = cString(body, 0, body.length);
    else if (typeflag === 'x') parsePax(body, offset, this.#pending.pax);
    else this.#mergeGlobal(body, offset);
  }

  /** A global record applies to all later entries; an empty value removes it. */
  #mergeGlobal(body: Buffer, offset: number): void {
    const records = new Map<string, string>();
    parsePax(body, offset, records);
    for (const [key, value] of records) {
      if (value === '') this.#globalPax.delete(key);
      else this.#globalPax.set(key, value);
    }
  }

  #hold(bytes: Buffer): void {
    this.#held.push(bytes);
    this.#heldBytes += bytes.length;
  }

  #releaseHeld(): void {
    for (const bytes of this.#held) this.push(bytes);
    this.#held = [];
    this.#heldBytes = 0;
  }
}

/** A pass-through Transform that parses (and by default validates) the tar stream flowing through it. */
export function createTarInspector(options: InspectorOptions = {}): Transform & { readonly summary: TarSummary } {
  return new TarInspector(options);
}

/** Reads a whole tar stream, discarding the bytes, and returns its summary. */
export async function inspectTar(input: Readable, options: InspectorOptions = {}): Promise<TarSummary> {
  const inspector = createTarInspector(options);
  const discard = new Writable({ write: (_chunk, _encoding, done) => done() });
  await pipeline(input, inspector, discard);
  return inspector.summary;
}

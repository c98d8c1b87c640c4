import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync, existsSync, linkSync, lutimesSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync,
  symlinkSync, writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  createTarInspector, displayName, inspectTar, TarFormatError, TarSafetyError,
  type InspectorOptions, type TarEntry, type TarSummary,
} from '../../scripts/lib/archive/tar-inspector.ts';

// ---------------------------------------------------------------------------
// A small tar writer for hand-built (mostly malicious) archives

interface HeaderSpec {
  name: string;
  type?: string;
  size?: number;
  linkName?: string;
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: number;
  prefix?: string;
  gnuMagic?: boolean;
}

function tarHeader(spec: HeaderSpec): Buffer {
  const block = Buffer.alloc(512);
  const text = (value: string, offset: number, length: number) => {
    const bytes = Buffer.from(value, 'latin1');
    assert.ok(bytes.length <= length, `field too long: ${value}`);
    bytes.copy(block, offset);
  };
  const octal = (value: number, offset: number, length: number) =>
    text(value.toString(8).padStart(length - 1, '0'), offset, length);
  text(spec.name, 0, 100);
  octal(spec.mode ?? 0o644, 100, 8);
  octal(spec.uid ?? 0, 108, 8);
  octal(spec.gid ?? 0, 116, 8);
  octal(spec.size ?? 0, 124, 12);
  octal(spec.mtime ?? 1_600_000_000, 136, 12);
  text(spec.type ?? '0', 156, 1);
  text(spec.linkName ?? '', 157, 100);
  text(spec.gnuMagic ? 'ustar  ' : 'ustar\u000000', 257, 8);
  text(spec.prefix ?? '', 345, 155);
  setChecksum(block);
  return block;
}

function setChecksum(block: Buffer): void {
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
}

function padded(data: Buffer): Buffer {
  return Buffer.concat([data, Buffer.alloc((512 - (data.length % 512)) % 512)]);
}

function fileEntry(name: string, content = 'data\n', spec: Partial<HeaderSpec> = {}): Buffer {
  const data = Buffer.from(content);
  return Buffer.concat([tarHeader({ name, size: data.length, ...spec }), padded(data)]);
}

function paxRecords(records: [string, string][]): Buffer {
  return Buffer.concat(records.map(([key, value]) => {
    const body = Buffer.concat([Buffer.from(` ${key}=`), Buffer.from(value, 'latin1'), Buffer.from('\n')]);
    let length = body.length + 1;
    while (String(length).length + body.length !== length) length += 1;
    return Buffer.concat([Buffer.from(String(length)), body]);
  }));
}

function paxEntry(type: 'x' | 'g', records: [string, string][]): Buffer {
  const body = paxRecords(records);
  return Buffer.concat([tarHeader({ name: 'PaxHeaders/meta', type, size: body.length }), padded(body)]);
}

function gnuLongEntry(type: 'L' | 'K', value: string): Buffer {
  const body = Buffer.from(`${value}\0`, 'latin1');
  return Buffer.concat([tarHeader({ name: '././@LongLink', type, size: body.length, gnuMagic: true }), padded(body)]);
}

const END_OF_ARCHIVE = Buffer.alloc(1024);

/** An archive of `good` parts followed by `bad` parts; `badOffset` is where the bad part begins. */
function archiveWith(good: Buffer[], bad: Buffer[] = []): { archive: Buffer; badOffset: number } {
  const head = Buffer.concat(good);
  return { archive: Buffer.concat([head, ...bad, END_OF_ARCHIVE]), badOffset: head.length };
}

// ---------------------------------------------------------------------------
// Running archives through the inspector

interface RunResult {
  entries: TarEntry[];
  output: Buffer;
  summary: TarSummary;
  error?: Error;
}

function chunksOf(data: Buffer, size: number): Buffer[] {
  const chunks: Buffer[] = [];
  for (let i = 0; i < data.length; i += size) chunks.push(data.subarray(i, i + size));
  return chunks;
}

/** Pipes `archive` (cut into `chunkSize` pieces) through an inspector into a collecting sink. */
async function runThrough(archive: Buffer, options: InspectorOptions = {}, chunkSize = 64 * 1024): Promise<RunResult> {
  const entries: TarEntry[] = [];
  const outputs: Buffer[] = [];
  const inspector = createTarInspector({ ...options, onEntry: (entry) => entries.push(entry) });
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      outputs.push(Buffer.from(chunk));
      done();
    },
  });
  let error: Error | undefined;
  try {
    await pipeline(Readable.from(chunksOf(archive, chunkSize)), inspector, sink);
  } catch (caught) {
    error = caught as Error;
  }
  return { entries, output: Buffer.concat(outputs), summary: inspector.summary, error };
}

/** Asserts the archive is refused as unsafe and that no byte from `badOffset` on reached the sink. */
async function assertRefused(archive: Buffer, badOffset: number, reason: RegExp): Promise<TarSafetyError> {
  for (const chunkSize of [archive.length, 700, 1]) {
    const { error, output } = await runThrough(archive, {}, chunkSize);
    assert.ok(error instanceof TarSafetyError, `expected TarSafetyError, got ${String(error)}`);
    assert.match(error.message, reason);
    assert.ok(output.length <= badOffset, `${output.length} bytes passed, the bad entry starts at ${badOffset}`);
    assert.deepEqual(output, archive.subarray(0, output.length));
  }
  return (await runThrough(archive)).error as TarSafetyError;
}

async function assertFormatError(archive: Buffer, message: RegExp): Promise<void> {
  for (const chunkSize of [Math.max(archive.length, 1), 100]) {
    const { error } = await runThrough(archive, {}, chunkSize);
    assert.ok(error instanceof TarFormatError, `expected TarFormatError, got ${String(error)}`);
    assert.match(error.message, message);
  }
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function withoutDotSlash(name: string): string {
  return name.replace(/^\.\//, '');
}

// ---------------------------------------------------------------------------
// A real directory tree archived by real tar programs

const MTIME = 1_600_000_000;
const LONG_NAME = `dir/${'a-rather-long-name-'.repeat(8)}end.txt`;
const NEWLINE_NAME = 'with space and\nnewline.txt';
const LATIN1_NAME = 'caf\xe9.txt'; // the byte 0xe9 alone: not valid UTF-8

let workspace: string;
let tree: string;
const archives: Record<'busybox' | 'gnu' | 'pax', Buffer> = { busybox: Buffer.alloc(0), gnu: Buffer.alloc(0), pax: Buffer.alloc(0) };

function buildTree(): void {
  mkdirSync(join(tree, 'dir'), { recursive: true });
  writeFileSync(join(tree, 'dir/secret.txt'), 'top secret\n');
  chmodSync(join(tree, 'dir/secret.txt'), 0o600);
  linkSync(join(tree, 'dir/secret.txt'), join(tree, 'dir/hard'));
  writeFileSync(join(tree, LONG_NAME), 'long\n');
  writeFileSync(join(tree, NEWLINE_NAME), 'newline\n');
  writeFileSync(Buffer.from(join(tree, LATIN1_NAME), 'latin1'), 'latin1\n');
  symlinkSync('/etc/hostname', join(tree, 'link-abs'));
  symlinkSync('../outside', join(tree, 'link-up'));
  execFileSync('mkfifo', [join(tree, 'pipe')]);
  for (const name of ['dir/secret.txt', LONG_NAME, NEWLINE_NAME, 'link-abs', 'link-up', 'pipe', 'dir', '.']) {
    lutimesSync(join(tree, name), MTIME, MTIME);
  }
  lutimesSync(Buffer.from(join(tree, LATIN1_NAME), 'latin1'), MTIME, MTIME);
  chmodSync(join(tree, 'dir'), 0o755);
  chmodSync(tree, 0o755);
}

function makeArchive(name: string, command: string, args: string[]): Buffer {
  const path = join(workspace, name);
  execFileSync(command, [...args, '-cf', path, '-C', tree, '.']);
  return readFileSync(path);
}

/** Checks the entry list of an archive of `tree` against what is on disk. */
function assertTreeEntries(entries: TarEntry[], owner: { uid: number; gid: number }): void {
  const byName = new Map(entries.map((entry) => [entry.name, entry]));
  assert.deepEqual([...byName.keys()].sort(), [
    '.', 'dir/', LONG_NAME, 'dir/hard', 'dir/secret.txt', LATIN1_NAME, 'link-abs', 'link-up', 'pipe', NEWLINE_NAME,
  ].sort());
  const expect = (name: string, fields: Partial<TarEntry>) =>
    assert.deepEqual(byName.get(name), { name, size: 0, mode: 0o644, linkName: '', mtime: MTIME, ...owner, ...fields });
  expect('.', { type: 'directory', mode: 0o755 });
  expect('dir/', { type: 'directory', mode: 0o755 });
  expect(LONG_NAME, { type: 'file', size: 5 });
  expect(NEWLINE_NAME, { type: 'file', size: 8 });
  expect(LATIN1_NAME, { type: 'file', size: 7 });
  expect('link-abs', { type: 'symlink', mode: 0o777, linkName: '/etc/hostname' });
  expect('link-up', { type: 'symlink', mode: 0o777, linkName: '../outside' });
  expect('pipe', { type: 'fifo' });
  // Which of the two hard-linked names carries the data depends on the walk order.
  const pair = [byName.get('dir/hard')!, byName.get('dir/secret.txt')!];
  const file = pair.find((entry) => entry.type === 'file')!;
  const link = pair.find((entry) => entry.type === 'hardlink')!;
  assert.ok(file && link, 'one name is the file, the other a hard link to it');
  assert.deepEqual([file.size, file.mode, link.size, link.mode], [11, 0o600, 0, 0o600]);
  assert.equal(withoutDotSlash(link.linkName), file.name);
}

async function assertRoundTrip(archive: Buffer, owner: { uid: number; gid: number }): Promise<RunResult> {
  const result = await runThrough(archive);
  assert.equal(result.error, undefined);
  assert.equal(sha256(result.output), sha256(archive));
  assertTreeEntries(result.entries, owner);
  return result;
}

before(() => {
  workspace = mkdtempSync(join(tmpdir(), 'tar-inspector-'));
  tree = join(workspace, 'tree');
  buildTree();
  const owner999 = ['--owner=999', '--group=999'];
  archives.busybox = makeArchive('busybox.tar', '/bin/busybox', ['tar']);
  archives.gnu = makeArchive('gnu.tar', 'tar', ['--format=gnu', ...owner999]);
  archives.pax = makeArchive('pax.tar', 'tar', ['--format=pax', ...owner999]);
});

after(() => rmSync(workspace, { recursive: true, force: true }));

// ---------------------------------------------------------------------------

describe('a tar inspector reading archives made by real tar programs', () => {
  const gnuOwner = { uid: 999, gid: 999 };

  it('passes a busybox archive through byte for byte and lists every entry', async () => {
    const { uid, gid } = statSync(tree);
    const { summary } = await assertRoundTrip(archives.busybox, { uid, gid });
    assert.deepEqual(summary, {
      entries: 10, files: 4, directories: 2, symlinks: 2, hardlinks: 1, dataBytes: 11 + 5 + 8 + 7,
      archiveBytes: archives.busybox.length,
    });
  });

  it('passes a GNU-format archive with long names, uid 999 and mode 0600 through unchanged', async () => {
    assert.ok(archives.gnu.includes('././@LongLink'), 'GNU tar stored the long name in an L entry');
    await assertRoundTrip(archives.gnu, gnuOwner);
  });

  it('passes a PAX archive through unchanged, taking names from its extended headers', async () => {
    assert.ok(archives.pax.includes(' path=./dir/a-rather-long'), 'GNU tar stored the long name in a PAX header');
    await assertRoundTrip(archives.pax, gnuOwner);
  });

  it('reads the same entries however the archive is cut into chunks', async () => {
    const archive = archives.pax;
    const whole = await runThrough(archive);
    for (const chunkSize of [1, 7, 511, 513, 1500]) {
      const cut = await runThrough(archive, {}, chunkSize);
      assert.equal(cut.error, undefined);
      assert.deepEqual(cut.entries, whole.entries);
      assert.equal(sha256(cut.output), sha256(archive));
    }
  });

  it('joins the ustar prefix field to the name', async () => {
    const deep = join(workspace, 'deep', 'p'.repeat(90), 'q'.repeat(40));
    mkdirSync(deep, { recursive: true });
    writeFileSync(join(deep, 'file.txt'), 'x');
    const path = join(workspace, 'ustar.tar');
    execFileSync('tar', ['--format=ustar', '-cf', path, '-C', join(workspace, 'deep'), '.']);
    const { entries, error } = await runThrough(readFileSync(path));
    assert.equal(error, undefined);
    assert.ok(entries.some((entry) => entry.name === `${'p'.repeat(90)}/${'q'.repeat(40)}/file.txt`));
  });

  it('decodes the base-256 numbers GNU tar writes for huge uids and out-of-range times', async () => {
    const path = join(workspace, 'base256.tar');
    const common = ['--format=gnu', '--owner=big:3000000', '-C', tree, 'dir/secret.txt'];
    execFileSync('tar', ['-cf', path, '--mtime=2300-01-01 00:00:00 UTC', ...common]);
    const future = (await runThrough(readFileSync(path))).entries[0]!;
    assert.equal(readFileSync(path)[108], 0x80, 'uid is base-256 encoded');
    assert.deepEqual([future.uid, future.mtime], [3_000_000, 10_413_792_000]);
    execFileSync('tar', ['-cf', path, '--mtime=1900-01-01 00:00:00 UTC', ...common]);
    const past = (await runThrough(readFileSync(path))).entries[0]!;
    assert.equal(past.mtime, -2_208_988_800);
  });

  it('feeds a real tar extraction that recreates the tree', async () => {
    const destination = mkdtempSync(join(workspace, 'extract-'));
    const tar = spawn('tar', ['-x', '-C', destination], { stdio: ['pipe', 'inherit', 'inherit'] });
    const exited = new Promise<number | null>((resolve) => tar.on('close', resolve));
    await pipeline(Readable.from([archives.gnu]), createTarInspector(), tar.stdin);
    assert.equal(await exited, 0);
    assert.equal(readFileSync(join(destination, 'dir/secret.txt'), 'utf8'), 'top secret\n');
    assert.equal(readFileSync(join(destination, LONG_NAME), 'utf8'), 'long\n');
  });

  it('returns the summary from inspectTar after consuming the whole stream', async () => {
    const archive = archives.gnu;
    const summary = await inspectTar(Readable.from(chunksOf(archive, 1000)));
    assert.deepEqual(summary, {
      entries: 10, files: 4, directories: 2, symlinks: 2, hardlinks: 1, dataBytes: 31, archiveBytes: archive.length,
    });
  });
});

describe('a tar inspector refusing unsafe entries', () => {
  const ok = () => fileEntry('ok.txt');
  const evilLink = () => tarHeader({ name: 'evil', type: '2', linkName: '/etc' });

  it('refuses an absolute path before any byte of its header goes downstream', async () => {
    const { archive, badOffset } = archiveWith([ok()], [fileEntry('/etc/passwd')]);
    const error = await assertRefused(archive, badOffset, /^unsafe entry "\/etc\/passwd": path is absolute$/);
    assert.deepEqual([error.entryName, error.reason], ['/etc/passwd', 'path is absolute']);
  });

  it("refuses a path with a '..' component", async () => {
    const { archive, badOffset } = archiveWith([ok()], [fileEntry('../x')]);
    await assertRefused(archive, badOffset, /"\.\.\/x": path contains a '\.\.' component/);
    const nested = archiveWith([ok()], [fileEntry('a/b/../../../x')]);
    await assertRefused(nested.archive, nested.badOffset, /'\.\.' component/);
  });

  it('refuses writing through a symlink created earlier in the archive', async () => {
    const { archive, badOffset } = archiveWith([ok(), evilLink()], [fileEntry('evil/passwd')]);
    await assertRefused(archive, badOffset, /"evil\/passwd": path lies under the earlier symlink "evil"/);
  });

  it('refuses symlink escapes hidden by ./, // and trailing slashes', async () => {
    for (const name of ['./evil//passwd', 'evil/./sub/', './evil/']) {
      const { archive, badOffset } = archiveWith([tarHeader({ name: './evil/', type: '2', linkName: '/etc' })], [
        tarHeader({ name, type: '5' }),
      ]);
      await assertRefused(archive, badOffset, /the earlier symlink "evil"/);
    }
  });

  it('refuses an entry that replaces an earlier symlink', async () => {
    const { archive, badOffset } = archiveWith([evilLink()], [fileEntry('evil')]);
    await assertRefused(archive, badOffset, /replaces the earlier symlink "evil"/);
  });

  it('refuses hard links to absolute targets, parent directories, or through symlinks', async () => {
    const cases: [string, RegExp][] = [
      ['/etc/shadow', /hard link target "\/etc\/shadow" is absolute/],
      ['a/../../shadow', /hard link target "a\/\.\.\/\.\.\/shadow" contains a '\.\.' component/],
      ['evil/shadow', /hard link target "evil\/shadow" lies under the earlier symlink "evil"/],
    ];
    for (const [target, reason] of cases) {
      const { archive, badOffset } = archiveWith([evilLink()], [tarHeader({ name: 'h', type: '1', linkName: target })]);
      await assertRefused(archive, badOffset, reason);
    }
  });

  it('treats a hard link to a symlink as a symlink', async () => {
    const { archive, badOffset } = archiveWith(
      [evilLink(), tarHeader({ name: 'alias', type: '1', linkName: 'evil' })],
      [fileEntry('alias/passwd')],
    );
    await assertRefused(archive, badOffset, /"alias\/passwd": path lies under the earlier symlink "alias"/);
  });

  it('refuses character and block devices', async () => {
    for (const type of ['3', '4']) {
      const { archive, badOffset } = archiveWith([ok()], [tarHeader({ name: 'dev/sda', type })]);
      await assertRefused(archive, badOffset, /"dev\/sda": device files are not restored/);
    }
  });

  it('refuses unsupported entry types, naming the typeflag', async () => {
    const sparse = archiveWith([ok()], [fileEntry('sparse.img', 'x', { type: 'S' })]);
    await assertRefused(sparse.archive, sparse.badOffset, /unsupported entry type 'S' \(GNU sparse file\)/);
    const unknown = archiveWith([ok()], [fileEntry('odd', 'x', { type: 'Q' })]);
    await assertRefused(unknown.archive, unknown.badOffset, /unsupported entry type 'Q'$/);
    const paxSparse = archiveWith([ok()], [paxEntry('x', [['GNU.sparse.major', '1']]), fileEntry('s.img')]);
    await assertRefused(paxSparse.archive, paxSparse.badOffset, /GNU sparse file \(PAX\)/);
  });

  it('holds back PAX and GNU long-name headers until their entry is accepted', async () => {
    const pax = archiveWith([ok()], [paxEntry('x', [['path', '../../etc/cron.d/job']]), fileEntry('harmless')]);
    await assertRefused(pax.archive, pax.badOffset, /"\.\.\/\.\.\/etc\/cron\.d\/job": path contains/);
    const gnu = archiveWith([ok()], [gnuLongEntry('L', `/${'x'.repeat(150)}`), fileEntry('harmless')]);
    await assertRefused(gnu.archive, gnu.badOffset, /path is absolute/);
    const link = archiveWith([ok()], [gnuLongEntry('K', '/etc/shadow'), tarHeader({ name: 'h', type: '1' })]);
    await assertRefused(link.archive, link.badOffset, /hard link target "\/etc\/shadow" is absolute/);
  });

  it('validates names that only some tar readers use', async () => {
    // busybox ignores a global PAX path and uses the header name.
    const global = archiveWith([ok()], [paxEntry('g', [['path', 'harmless']]), fileEntry('/etc/passwd')]);
    await assertRefused(global.archive, global.badOffset, /"\/etc\/passwd": path is absolute/);
    // busybox joins the prefix field even in GNU-format headers, where GNU tar ignores it.
    const prefix = archiveWith([ok()], [fileEntry('passwd', 'x', { prefix: '/etc', gnuMagic: true })]);
    await assertRefused(prefix.archive, prefix.badOffset, /"\/etc\/passwd": path is absolute/);
  });

  it('refuses non-file entries carrying data, which tar readers skip differently', async () => {
    const smuggled = fileEntry('/etc/passwd');
    for (const spec of [{ name: 'd/', type: '5' }, { name: 'l', type: '2' }, { name: 'f/', type: '0' }]) {
      const { archive, badOffset } = archiveWith([ok()], [tarHeader({ ...spec, size: smuggled.length }), smuggled]);
      await assertRefused(archive, badOffset, /entry with 1024 data bytes/);
    }
  });

  it('accepts symlinks pointing anywhere, the root entry, and odd but harmless names', async () => {
    const { archive } = archiveWith([
      tarHeader({ name: './', type: '5' }),
      tarHeader({ name: 'abs', type: '2', linkName: '/etc/passwd' }),
      tarHeader({ name: 'up', type: '2', linkName: '../../..' }),
      tarHeader({ name: 'dangling', type: '2', linkName: 'nowhere/at/all' }),
      fileEntry('evil-twin'), // shares a prefix with no symlink
      fileEntry('..hidden'),
      fileEntry('line\nbreak \xff\xfe'),
      tarHeader({ name: 'hl', type: '1', linkName: 'abs' }),
    ]);
    const { error, entries, output } = await runThrough(archive);
    assert.equal(error, undefined);
    assert.equal(output.length, archive.length);
    assert.deepEqual(entries.map((entry) => entry.name), [
      '.', 'abs', 'up', 'dangling', 'evil-twin', '..hidden', 'line\nbreak \xff\xfe', 'hl',
    ]);
  });

  it('lets everything through when validation is off', async () => {
    const { archive } = archiveWith([fileEntry('/etc/passwd'), tarHeader({ name: 'sda', type: '4' })]);
    const { error, entries, output } = await runThrough(archive, { validate: false });
    assert.equal(error, undefined);
    assert.deepEqual(output, archive);
    assert.deepEqual(entries.map((entry) => [entry.name, entry.type]), [['/etc/passwd', 'file'], ['sda', 'block-device']]);
  });

  it('stops a real tar extraction before the unsafe entry', async () => {
    const destination = mkdtempSync(join(workspace, 'refuse-'));
    const { archive } = archiveWith([ok()], [fileEntry('/planted.txt')]);
    const tar = spawn('tar', ['-x', '-C', destination], { stdio: ['pipe', 'ignore', 'ignore'] });
    const exited = new Promise((resolve) => tar.on('close', resolve));
    await assert.rejects(pipeline(Readable.from([archive]), createTarInspector(), tar.stdin), TarSafetyError);
    await exited;
    // GNU tar would strip the leading '/' and extract it here.
    assert.equal(existsSync(join(destination, 'planted.txt')), false);
  });
});

describe('a tar inspector reading PAX extended headers', () => {
  it('applies per-entry path, linkpath, size, uid, gid and mtime records', async () => {
    const utf8Name = Buffer.from('ünïcödé/файл.txt').toString('latin1');
    const { archive } = archiveWith([
      paxEntry('x', [['path', utf8Name], ['size', '5'], ['uid', '123456789'], ['gid', '42'], ['mtime', '1234567890.75']]),
      tarHeader({ name: 'placeholder', size: 0 }),
      padded(Buffer.from('12345')),
      paxEntry('x', [['linkpath', 'target/of/a/very/long/symlink']]),
      tarHeader({ name: 'sym', type: '2', linkName: 'short' }),
    ]);
    const { error, entries, summary } = await runThrough(archive);
    assert.equal(error, undefined);
    assert.deepEqual(entries[0], {
      name: utf8Name, type: 'file', size: 5, mode: 0o644, uid: 123456789, gid: 42, mtime: 1234567890, linkName: '',
    });
    assert.equal(displayName(entries[0]!.name), 'ünïcödé/файл.txt');
    assert.equal(entries[1]!.linkName, 'target/of/a/very/long/symlink');
    assert.equal(summary.dataBytes, 5);
  });

  it('applies global records to all later entries until an entry overrides them', async () => {
    const { archive } = archiveWith([
      paxEntry('g', [['uid', '7'], ['gid', '8']]),
      fileEntry('a', 'x', { uid: 1, gid: 1 }),
      paxEntry('x', [['uid', '']]), // an empty value falls back to the header field
      fileEntry('b', 'x', { uid: 2, gid: 2 }),
      paxEntry('g', [['gid', '']]),
      fileEntry('c', 'x', { uid: 3, gid: 3 }),
    ]);
    const { error, entries } = await runThrough(archive);
    assert.equal(error, undefined);
    assert.deepEqual(entries.map((entry) => [entry.name, entry.uid, entry.gid]), [['a', 7, 8], ['b', 2, 8], ['c', 7, 3]]);
  });
});

describe('a tar inspector reading broken archives', () => {
  it('reports an empty input as truncated', async () => {
    await assertFormatError(Buffer.alloc(0), /^archive is truncated: ended after 0 entries at byte 0$/);
  });

  it('reports an archive cut in the middle of file data as truncated, through the pipeline', async () => {
    const { archive } = archiveWith([fileEntry('a'), fileEntry('b', 'x'.repeat(2000))]);
    await assertFormatError(archive.subarray(0, 1800), /^archive is truncated: ended after 2 entries at byte 1800$/);
  });

  it('reports an archive cut inside a header or before the end marker as truncated', async () => {
    const entries = Buffer.concat([fileEntry('a'), fileEntry('b')]);
    await assertFormatError(entries, /ended after 2 entries at byte 2048$/);
    await assertFormatError(entries.subarray(0, 1300), /ended after 1 entries at byte 1300$/);
  });

  it('reports a header with a flipped byte as corrupt, at the offset of that header', async () => {
    const archive = Buffer.from(archives.gnu);
    const second = 512; // the root directory has no data, so the second header follows it
    archive[second + 5] ^= 0x01;
    await assertFormatError(archive, /^corrupt tar header at byte 512 \(checksum mismatch\)$/);
  });

  it('reports garbage as corrupt', async () => {
    await assertFormatError(Buffer.from('this is not a tar archive'.repeat(50)), /corrupt tar header at byte 0/);
  });

  it('reports data after the end-of-archive marker, which busybox would still extract', async () => {
    const archive = Buffer.concat([fileEntry('a'), Buffer.alloc(512), fileEntry('/etc/passwd'), END_OF_ARCHIVE]);
    await assertFormatError(archive, /unexpected data after the end-of-archive marker at byte 1536/);
  });

  it('accepts a single zero block and any trailing zeros as the end of the archive', async () => {
    for (const end of [Buffer.alloc(512), Buffer.alloc(10 * 1024), Buffer.alloc(1000)]) {
      const { error, entries } = await runThrough(Buffer.concat([fileEntry('a'), end]));
      assert.equal(error, undefined);
      assert.equal(entries.length, 1);
    }
  });

  it('with strict, refuses a non-zero byte in the padding after file data (chunked anywhere)', async () => {
    const archive = Buffer.concat([fileEntry('a', 'x'.repeat(700)), fileEntry('b'), END_OF_ARCHIVE]);
    archive[512 + 900] = 1; // past a's 700 data bytes, before b's header at 1536
    assert.equal((await runThrough(archive)).error, undefined, 'padding is not checked by default');
    for (const chunkSize of [64 * 1024, 100, 7]) {
      const { error } = await runThrough(archive, { strict: true }, chunkSize);
      assert.ok(error instanceof TarFormatError);
      assert.match(error.message, /^non-zero padding after an entry's data at byte 1412$/);
    }
    archive[512 + 900] = 0;
    archive[512 + 699] = 1; // the last data byte is data, not padding
    assert.equal((await runThrough(archive, { strict: true }, 7)).error, undefined);
  });

  it('with strict, refuses a header whose checksum field ends otherwise than GNU tar writes it', async () => {
    for (const at of [154, 155]) {
      const archive = Buffer.concat([fileEntry('a'), END_OF_ARCHIVE]);
      archive[at] ^= 0x20; // NUL <-> space: the sum is the same, the field reads the same
      assert.equal((await runThrough(archive)).error, undefined, 'not checked by default');
      const { error } = await runThrough(archive, { strict: true });
      assert.match(String(error?.message), /^tar header at byte 0 has its checksum in an unexpected form$/);
    }
  });

  it('with strict, refuses a non-zero byte in the padding of a GNU long name', async () => {
    const archive = Buffer.concat([gnuLongEntry('L', 'n'.repeat(150)), fileEntry('short'), END_OF_ARCHIVE]);
    archive[512 + 300] = 1;
    for (const chunkSize of [64 * 1024, 100]) {
      const { error } = await runThrough(archive, { strict: true }, chunkSize);
      assert.match(String(error?.message), /^non-zero padding after an entry's data at byte 812$/);
    }
  });

  it('reports an entry without a name as a format error', async () => {
    await assertFormatError(Buffer.concat([fileEntry(''), END_OF_ARCHIVE]), /entry without a name at byte 0/);
  });
});

describe('a tar inspector under load', () => {
  it('streams a 200 MB archive through without trouble', async () => {
    const fileSize = 2 * 1024 * 1024;
    const files = 100;
    const zeros = Buffer.alloc(64 * 1024);
    async function* generate() {
      for (let i = 0; i < files; i++) {
        yield tarHeader({ name: `big/file-${i}.bin`, size: fileSize });
        for (let sent = 0; sent < fileSize; sent += zeros.length) yield zeros;
      }
      yield END_OF_ARCHIVE;
    }
    const summary = await inspectTar(Readable.from(generate()));
    assert.deepEqual([summary.files, summary.dataBytes], [files, files * fileSize]);
    assert.equal(summary.archiveBytes, files * (512 + fileSize) + 1024);
  });
});

describe('displayName', () => {
  it('decodes UTF-8 bytes and escapes invalid bytes and control characters', () => {
    assert.equal(displayName(Buffer.from('naïve').toString('latin1')), 'naïve');
    assert.equal(displayName('caf\xe9.txt'), 'caf\\xe9.txt');
    assert.equal(displayName('a\nb\tc\u0001'), 'a\\nb\\tc\\x01');
    assert.equal(displayName('say "hi"'), 'say \\"hi\\"');
  });

  it('is used in the messages of safety errors', () => {
    const error = new TarSafetyError('bad\nname\xff', 'path is absolute');
    assert.equal(error.message, 'unsafe entry "bad\\nname\\xff": path is absolute');
    assert.equal(error.entryName, 'bad\nname\xff');
  });
});

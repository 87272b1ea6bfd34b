/**
 * The importer's pure parts: file kinds and order (`_shared/` first), the progress bar, command-line parsing and
 * the streaming line reader.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { parseImportArgs } from '../../src/cli/import.ts';
import { formatBytes, formatDuration, renderBar } from '../../src/import/bar.ts';
import { readLines } from '../../src/import/importer.ts';
import { kindOf, listSources, orderEntries } from '../../src/import/sources.ts';

t.test('kindOf and orderEntries', async (t) => {
  const kinds: Array<[string, string | undefined]> = [
    ['a.json', 'bundle'],
    ['A.JSON', 'bundle'],
    ['b.ndjson', 'ndjson'],
    ['c.jsonl', 'ndjson'],
    ['SOURCE.md', undefined],
    ['d.json.gz', undefined],
  ];
  for (const [name, kind] of kinds) t.equal(kindOf(name), kind, name);
  t.same(orderEntries(['b.json', '_shared', 'a.json', 'Z.json', '_other']), ['_shared', 'Z.json', '_other', 'a.json', 'b.json']);
});

t.test('listSources walks directories with _shared first at every level', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sealed-fhir-sources-'));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  for (const f of ['b.json', 'a.ndjson', 'sub/_shared/s.json', 'sub/x.json', '_shared/h.json', 'notes.txt', '.hidden.json']) {
    await fs.mkdir(path.dirname(path.join(dir, f)), { recursive: true });
    await fs.writeFile(path.join(dir, f), '{}');
  }
  const { files, ignored } = await listSources(dir);
  t.same(files.map((f) => path.relative(dir, f.path)), ['_shared/h.json', 'sub/_shared/s.json', 'a.ndjson', 'b.json', 'sub/x.json']);
  t.same(files.map((f) => f.shared), [true, true, false, false, false]);
  t.same(ignored.map((f) => path.relative(dir, f)), ['notes.txt']);
  t.same((await listSources(path.join(dir, 'b.json'))).files.map((f) => f.kind), ['bundle'], 'a single file');
});

t.test('renderBar and its formats', async (t) => {
  t.equal(formatDuration(0), '0:00');
  t.equal(formatDuration(61_000), '1:01');
  t.equal(formatDuration(3_723_000), '1:02:03');
  t.equal(formatBytes(2048), '2.0 kB');
  t.equal(formatBytes(5 * 1024 * 1024), '5.0 MB');
  const line = renderBar({ bytesDone: 25, bytesTotal: 100, filesDone: 1, filesTotal: 4, resources: 5000, failures: 0, elapsedMs: 2000 }, 8);
  t.match(line, /^\[##\.\.\.\.\.\.\]  25%/);
  t.match(line, /files 1\/4/);
  t.match(line, /5,000 resources  2,500\/s  ETA 0:06/, 'rate from resources, ETA from bytes');
  t.notMatch(line, /failed/);
  t.match(renderBar({ bytesDone: 0, bytesTotal: 100, filesDone: 0, filesTotal: 1, resources: 0, failures: 2, elapsedMs: 0 }), /ETA \?  2 failed$/);
  t.match(renderBar({ bytesDone: 0, bytesTotal: 0, filesDone: 0, filesTotal: 0, resources: 0, failures: 0, elapsedMs: 5 }), /100%.*ETA 0:00/);
});

t.test('parseImportArgs', async (t) => {
  t.same(parseImportArgs(['data']), { target: 'data', concurrency: 2, chunkLines: 500, restart: false, verbose: false });
  t.same(parseImportArgs(['--concurrency', '4', '--chunk', '10', '--restart', 'x']), { target: 'x', concurrency: 4, chunkLines: 10, restart: true, verbose: false });
  t.equal(parseImportArgs(['--help']), 'help');
  t.throws(() => parseImportArgs([]), /exactly one/);
  t.throws(() => parseImportArgs(['a', 'b']), /exactly one/);
  t.throws(() => parseImportArgs(['--concurrency', '0', 'a']), /--concurrency/);
  t.throws(() => parseImportArgs(['--bogus', 'a']));
});

t.test('readLines numbers lines across chunk boundaries, CRLF and a last line without newline', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sealed-fhir-lines-'));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  const long = 'x'.repeat(300 * 1024); // longer than one read chunk
  await fs.writeFile(path.join(dir, 'f.ndjson'), `a\r\n${long}\n\nlast`);
  let bytes = 0;
  const lines = [];
  for await (const l of readLines(path.join(dir, 'f.ndjson'), (n) => (bytes += n))) lines.push([l.line, l.text?.length]);
  t.same(lines, [[1, 1], [2, long.length], [3, 0], [4, 4]]);
  t.equal(bytes, 3 + long.length + 1 + 1 + 4);
});

t.test('readLines decodes UTF-8 strictly, line by line, even where a character straddles two read chunks', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sealed-fhir-lines-'));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  // 'ü' is two bytes: placed so that the first 256 KiB read ends between them.
  const straddling = 'x'.repeat(256 * 1024 - 1) + 'ü';
  const latin1 = Buffer.from('{"family":"M\xfcller"}', 'latin1');
  await fs.writeFile(path.join(dir, 'f.ndjson'), Buffer.concat([Buffer.from(`${straddling}\n`), latin1, Buffer.from('\nMüller\r\n')]));
  const lines = [];
  for await (const l of readLines(path.join(dir, 'f.ndjson'))) lines.push(l);
  t.equal(lines.length, 3);
  t.equal(lines[0]!.text, straddling, 'the straddling character is read whole');
  t.same(lines[1], { line: 2, invalid: 'the line is not valid UTF-8' }, 'a Latin-1 line is refused, not read as M\uFFFDller');
  t.same(lines[2], { line: 3, text: 'Müller' });
});

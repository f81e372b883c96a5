import { spawn } from 'node:child_process';
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  previousPath,
  readStateFile,
  readStateFileSync,
  removeStateFile,
  writeStateFile,
  writeStateFileSync,
} from './index';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'state-file-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const parseJson = (text: string): { n: number } => {
  const v = JSON.parse(text) as { n?: unknown };
  if (typeof v.n !== 'number') throw new Error('n is not a number');
  return { n: v.n };
};

describe('writeStateFile', () => {
  it('writes the content with the mode asked and keeps the replaced content as .prev', async () => {
    const file = join(dir, 'state.json');
    await writeStateFile(file, '{"n":1}', { mode: 0o640 });
    expect(readFileSync(file, 'utf8')).toBe('{"n":1}');
    expect(statSync(file).mode & 0o777).toBe(0o640);
    await writeStateFile(file, '{"n":2}');
    expect(readFileSync(file, 'utf8')).toBe('{"n":2}');
    expect(readFileSync(previousPath(file), 'utf8')).toBe('{"n":1}');
    // Nothing but the file and its previous copy is left in the directory.
    expect(readdirSync(dir).sort()).toEqual(['state.json', 'state.json.prev']);
  });

  it('gives concurrent writers their own tmp files: every write succeeds and one wins whole', async () => {
    const file = join(dir, 'state.json');
    await Promise.all(
      Array.from({ length: 40 }, (_, n) => writeStateFile(file, JSON.stringify({ n }))),
    );
    const { value, source } = await readStateFile(file, parseJson);
    expect(source).toBe('current');
    expect(value!.n).toBeGreaterThanOrEqual(0);
    expect(value!.n).toBeLessThan(40);
    expect(readdirSync(dir).filter((n) => n.includes('.tmp-'))).toEqual([]);
  });

  it('leaves no tmp file and the old content when the write fails', async () => {
    await expect(writeStateFile(join(dir, 'missing-dir', 'state.json'), 'x')).rejects.toThrow(
      /ENOENT/,
    );
    // A directory where the file should be: the rename fails, and the tmp file goes with it.
    const blocked = join(dir, 'blocked');
    mkdirSync(blocked);
    writeFileSync(join(blocked, 'inside'), 'kept');
    await expect(writeStateFile(blocked, '{"n":1}', { keepPrevious: false })).rejects.toThrow();
    expect(readFileSync(join(blocked, 'inside'), 'utf8')).toBe('kept');
    expect(readdirSync(dir).filter((n) => n.includes('.tmp-'))).toEqual([]);
  });

  it('never leaves a half-written file when the writer is killed mid-way', async () => {
    const file = join(dir, 'state.json');
    const big = 'x'.repeat(256 * 1024);
    writeStateFileSync(file, JSON.stringify({ n: 0, big }));
    const script = `
      const { writeStateFileSync } = require(${JSON.stringify(join(__dirname, '..', 'dist', 'index.js'))});
      for (let n = 1; ; n++) writeStateFileSync(${JSON.stringify(file)}, JSON.stringify({ n, big: 'x'.repeat(${big.length}) }));
    `;
    for (let round = 0; round < 5; round++) {
      const child = spawn(process.execPath, ['-e', script], { stdio: 'ignore' });
      await new Promise((r) => setTimeout(r, 60 + round * 37));
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      const { value, source, problems } = readStateFileSync(file, parseJson);
      expect(problems).toEqual([]);
      expect(source).toBe('current');
      expect(typeof value!.n).toBe('number');
      // What the killed writer left half-way (a tmp file, a whole copy of the state) is gone.
      expect(readdirSync(dir).filter((n) => n.includes('.tmp-'))).toEqual([]);
    }
  });

  it("a read removes tmp files of writers that are gone, and keeps a live writer's", async () => {
    const file = join(dir, 'state.json');
    writeStateFileSync(file, '{"n":1}');
    const gone = spawn(process.execPath, ['-e', '0']);
    await new Promise((r) => gone.once('exit', r));
    const leftovers = [
      `.state.json.tmp-${gone.pid}-a1b2c3`,
      `.state.json.prev.tmp-${gone.pid}-a1b2c3`,
      `.state.json.tmp-${process.pid}-d4e5f6`, // this process: a write in progress
      '.state.json.tmp-1-0a0b0c', // pid 1 runs
      '.other.json.tmp-999999-0a0b0c', // another file's
    ];
    for (const name of leftovers) writeFileSync(join(dir, name), '{"n":0}');
    expect(readStateFileSync(file, parseJson).value).toEqual({ n: 1 });
    expect(
      readdirSync(dir)
        .filter((n) => n.includes('.tmp-'))
        .sort(),
    ).toEqual(leftovers.slice(2).sort());
  });
});

describe('readStateFile', () => {
  it('reads nothing from a missing file and reports no problem', async () => {
    const r = await readStateFile(join(dir, 'none.json'), parseJson);
    expect(r).toEqual({ value: undefined, source: 'none', problems: [] });
  });

  it('moves a garbled file aside and falls back to the previous copy', async () => {
    const file = join(dir, 'state.json');
    await writeStateFile(file, '{"n":1}');
    await writeStateFile(file, '{"n":2}');
    writeFileSync(file, '{"n":'); // truncated by something that did not use writeStateFile
    const r = await readStateFile(file, parseJson);
    expect(r.value).toEqual({ n: 1 });
    expect(r.source).toBe('previous');
    expect(r.problems).toHaveLength(1);
    expect(r.problems[0]!.file).toBe(file);
    expect(r.problems[0]!.error).toMatch(/JSON/);
    expect(readFileSync(r.problems[0]!.movedTo!, 'utf8')).toBe('{"n":');
    // The previous copy is the file again: the next read (a restart) finds it there.
    expect(readStateFileSync(file, parseJson)).toEqual({
      value: { n: 1 },
      source: 'current',
      problems: [],
    });
  });

  it('starts empty when both copies are unusable, naming both', () => {
    const file = join(dir, 'state.json');
    writeFileSync(file, '\0\0\0');
    writeFileSync(previousPath(file), '{"n":"one"}');
    const r = readStateFileSync(file, parseJson);
    expect(r.value).toBeUndefined();
    expect(r.source).toBe('none');
    expect(r.problems.map((p) => p.file)).toEqual([file, previousPath(file)]);
    expect(r.problems[1]!.error).toBe('n is not a number');
  });

  it('ignores a lone previous copy when the current file is simply absent', async () => {
    const file = join(dir, 'state.json');
    writeFileSync(previousPath(file), '{"n":3}');
    expect((await readStateFile(file, parseJson)).source).toBe('none');
  });

  it('removeStateFile removes both copies', async () => {
    const file = join(dir, 'state.json');
    await writeStateFile(file, '{"n":1}');
    await writeStateFile(file, '{"n":2}');
    await removeStateFile(file);
    expect(readdirSync(dir)).toEqual([]);
  });
});

import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { recordingLogger } from '../test/support/recording-logger';
import { ChainController } from './controller';
import { StateFileError } from './errors';
import { FileChainStore, type StoredChain, parseChainState } from './store';

const spec = {
  classifier: { ingressPort: 'uplink', protocol: 'udp' },
  hops: [],
  egressPort: 'sink1',
};
const chains = (...names: string[]): StoredChain[] =>
  names.map((name) => ({ name, spec, generation: '1' }));
const fileOf = (c: StoredChain[]) => JSON.stringify({ version: 1, chains: c }, null, 2) + '\n';

describe('parseChainState', () => {
  it.each([
    ['', '', /not JSON/],
    ['{"version":1,"chains":[{"name":"a"', '', /not JSON/],
    ['[]', '', /not a JSON object/],
    ['{}', 'version', /is undefined/],
    ['{"version":2,"chains":[]}', 'version', /is 2; this controller reads version 1/],
    ['{"version":1,"chains":{}}', 'chains', /not an array/],
    ['{"version":1,"chains":[7]}', 'chains[0]', /not an object/],
    [
      '{"version":1,"chains":[{"name":"Bad Name","spec":{},"generation":"1"}]}',
      'chains[0].name',
      /DNS-1123/,
    ],
    [
      '{"version":1,"chains":[{"name":"a","spec":{},"generation":"1"},{"name":"a","spec":{},"generation":"1"}]}',
      'chains[1].name',
      /"a" appears twice/,
    ],
    ['{"version":1,"chains":[{"name":"a","generation":"1"}]}', 'chains[0].spec', /not an object/],
    [
      '{"version":1,"chains":[{"name":"a","spec":{},"generation":1}]}',
      'chains[0].generation',
      /positive decimal/,
    ],
    [
      '{"version":1,"chains":[{"name":"a","spec":{},"generation":"1","owner":3}]}',
      'chains[0].owner',
      /not a string/,
    ],
  ])('refuses %j naming "%s"', (text, field, reason) => {
    const err = (() => {
      try {
        parseChainState(text);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(StateFileError);
    expect((err as StateFileError).field).toBe(field);
    expect((err as StateFileError).reason).toMatch(reason);
  });

  it('reads a state file as written', () => {
    const c = [{ ...chains('a')[0]!, owner: 'ServiceChain/ns/a' }, ...chains('b')];
    expect(parseChainState(fileOf(c))).toEqual(c);
  });
});

describe('FileChainStore', () => {
  let dir: string;
  let path: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'flowline-store-'));
    path = join(dir, 'state', 'chains.json');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('saves with mode 0600, keeps the replaced content as .prev, and loads what it saved', async () => {
    const store = new FileChainStore(path);
    expect(await store.load()).toEqual([]);
    await store.save(chains('a'));
    await store.save(chains('a', 'b'));
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(`${path}.prev`, 'utf8'))).toEqual({
      version: 1,
      chains: chains('a'),
    });
    expect(await store.load()).toEqual(chains('a', 'b'));
  });

  // Each way a state file goes bad: cut short (a crash or full disk), garbled bytes, and valid
  // JSON that is not a state file.
  const damages: [string, (text: string) => string, RegExp][] = [
    ['truncated', (t) => t.slice(0, Math.floor(t.length / 2)), /not JSON/],
    ['garbled', () => '\u0000\u00ff\u0013garbage\u0000', /not JSON/],
    ['valid JSON of another shape', () => '{"chains":"x"}', /^version: is undefined/],
  ];

  it.each(damages)(
    'a %s file is moved aside and logged; the previous copy is used',
    async (_what, damage, error) => {
      const logger = recordingLogger();
      const store = new FileChainStore(path, logger);
      await store.save(chains('a'));
      await store.save(chains('a', 'b'));
      writeFileSync(path, damage(readFileSync(path, 'utf8')));
      expect(await store.load()).toEqual(chains('a'));
      const problem = logger.lines.find((l) => l.msg === 'chain state file unusable');
      expect(problem).toMatchObject({
        level: 'error',
        file: path,
        error: expect.stringMatching(error),
      });
      expect(existsSync(problem!.movedTo as string)).toBe(true);
      expect(logger.lines.at(-1)).toMatchObject({
        level: 'warn',
        msg: 'chain state restored from the previous copy',
        source: 'previous',
        chains: 1,
      });
      // Written back as the current file: the next start reads it without a problem.
      const again = recordingLogger();
      expect(await new FileChainStore(path, again).load()).toEqual(chains('a'));
      expect(again.lines).toEqual([]);
    },
  );

  it('a garbled file without a usable previous copy starts empty, saying so', async () => {
    const logger = recordingLogger();
    const store = new FileChainStore(path, logger);
    await store.save(chains('a'));
    await store.save(chains('b'));
    writeFileSync(path, '{"version":1,"chains":[');
    writeFileSync(`${path}.prev`, '[]');
    expect(await store.load()).toEqual([]);
    expect(logger.lines.map((l) => [l.level, l.msg, l.file])).toEqual([
      ['error', 'chain state file unusable', path],
      ['error', 'chain state file unusable', `${path}.prev`],
      ['warn', 'no usable chain state; starting with no chains', path],
    ]);
    // The next save starts a good file again.
    await store.save(chains('c'));
    expect(await new FileChainStore(path).load()).toEqual(chains('c'));
  });

  it('the controller starts from a file with a chain that no longer validates, leaving it out', async () => {
    const logger = recordingLogger();
    const bad = { name: 'bad', spec: { ...spec, egressPort: '' }, generation: '3' };
    writeFileSync(join(dir, 'chains.json'), fileOf([...chains('good'), bad]));
    const applied: string[][] = [];
    const controller = new ChainController({
      store: new FileChainStore(join(dir, 'chains.json'), logger),
      directory: { lookup: async () => undefined },
      switch: {
        apply: async (flows) => void applied.push(flows),
        flowStats: async () => [],
        portNames: async () => new Set(['uplink', 'sink1']),
      },
      logger,
    });
    await controller.start();
    expect(controller.list().map((c) => [c.name, c.status?.phase])).toEqual([['good', 'ACTIVE']]);
    expect(logger.lines.find((l) => l.msg === 'stored chain is not valid; left out')).toMatchObject(
      {
        level: 'error',
        chain: 'bad',
        error: expect.stringMatching(/^spec\.egress_port: is required/),
        stored: bad,
      },
    );
    expect(applied.at(-1)!.some((f) => f.includes('in_port=uplink'))).toBe(true);
  });
});

import { describe, expect, it } from 'vitest';
import { positiveInt, windowFlag, type WindowOptions } from './args';

describe('positiveInt', () => {
  it('takes a positive integer', () => {
    expect(positiveInt('--rounds', '5')).toBe(5);
    expect(positiveInt('--flows', '1048576')).toBe(1_048_576);
  });

  it('refuses anything else, naming the flag and the value', () => {
    for (const raw of ['0', '-3', '1.5', 'x', '', ' ', undefined])
      expect(() => positiveInt('--burst', raw)).toThrow(
        `--burst needs a positive integer, got ${raw}`,
      );
  });
});

describe('windowFlag', () => {
  const fresh = (): WindowOptions => ({ rounds: 8, warmupMs: 500, windowMs: 1500, burst: 32 });

  it('sets each window flag and says it took the value', () => {
    const o = fresh();
    expect(windowFlag(o, '--rounds', '3')).toBe(true);
    expect(windowFlag(o, '--warmup-ms', '100')).toBe(true);
    expect(windowFlag(o, '--window-ms', '900')).toBe(true);
    expect(windowFlag(o, '--burst', '64')).toBe(true);
    expect(o).toEqual({ rounds: 3, warmupMs: 100, windowMs: 900, burst: 64 });
  });

  it('leaves other flags (and inherited names) to the caller, and refuses a bad value', () => {
    const o = fresh();
    for (const flag of ['--cases', '--flows', 'toString', '__proto__'])
      expect(windowFlag(o, flag, '7')).toBe(false);
    expect(o).toEqual(fresh());
    expect(() => windowFlag(o, '--rounds', '0')).toThrow(
      '--rounds needs a positive integer, got 0',
    );
  });
});

import { describe, expect, it } from 'vitest';

import { MissingValueError, must } from './must';

describe('must', () => {
  it('returns a value that is there, falsy ones too', () => {
    const m = new Map([['a', 1]]);
    expect(must(m.get('a'), 'entry a')).toBe(1);
    expect(must(0, 'zero')).toBe(0);
    expect(must('', 'empty string')).toBe('');
    expect(must(false, 'false')).toBe(false);
    expect(must(Number.NaN, 'NaN')).toBeNaN();
  });

  it('throws a MissingValueError naming what is missing', () => {
    const m = new Map<string, number>();
    const missing = (): number => must(m.get('b'), 'entry b');
    expect(missing).toThrow(MissingValueError);
    expect(missing).toThrow('no entry b');
    expect(missing).toThrow(
      expect.objectContaining({ what: 'entry b', name: 'MissingValueError' }),
    );
    expect(() => must(null, 'a stream')).toThrow('no a stream');
    expect(() => must([1][1], 'index 1')).toThrow(MissingValueError);
  });
});

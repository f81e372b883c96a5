import { describe, expect, it } from 'vitest';
import { FlagError, nonNegativeIntFlag, requiredFlag } from './index';

class CallersUsageError extends Error {}

describe('nonNegativeIntFlag', () => {
  it('takes 0 and positive integers, the fallback when absent', () => {
    expect(nonNegativeIntFlag(undefined, 'rescan-ms', 500)).toBe(500);
    expect(nonNegativeIntFlag('0', 'rescan-ms', 500)).toBe(0);
    expect(nonNegativeIntFlag('250', 'rescan-ms', 500)).toBe(250);
  });

  it('refuses negatives, fractions, text and empty values, naming the flag', () => {
    for (const bad of ['-1', '1.5', 'ten', '', ' ']) {
      expect(() => nonNegativeIntFlag(bad, 'rescan-ms', 500)).toThrow(
        new FlagError(`--rescan-ms ${bad} is not a non-negative integer`),
      );
    }
  });

  it("throws the caller's error class", () => {
    expect(() => nonNegativeIntFlag('x', 'n', 1, CallersUsageError)).toThrow(CallersUsageError);
  });
});

describe('requiredFlag', () => {
  it('returns a given value and refuses a missing or empty one with the usage', () => {
    expect(requiredFlag('a.yaml', 'config', 'usage: x')).toBe('a.yaml');
    for (const bad of [undefined, '']) {
      expect(() => requiredFlag(bad, 'config', 'usage: x')).toThrow(
        new FlagError('--config is required\n\nusage: x'),
      );
    }
    expect(() => requiredFlag(undefined, 'root', 'u', CallersUsageError)).toThrow(
      CallersUsageError,
    );
  });
});

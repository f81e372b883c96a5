/**
 * Command-line flag values, parsed once for every Flowline binary that takes them: a
 * non-negative integer with its default, a value that must be given. Each error names the flag.
 * A caller passes its own usage-error class, so that its exit code and error type stay its own.
 */

/** A usage error's constructor: the caller's class, or FlagError. */
export type UsageErrorClass = new (message: string) => Error;

/** A flag given a value it cannot take, or not given when it must be. */
export class FlagError extends Error {
  override name = 'FlagError';
}

/** `--name`'s value as a non-negative integer, or `fallback` when it was not given. */
export function nonNegativeIntFlag(
  value: string | undefined,
  name: string,
  fallback: number,
  Err: UsageErrorClass = FlagError,
): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (value.trim() === '' || !Number.isInteger(n) || n < 0)
    throw new Err(`--${name} ${value} is not a non-negative integer`);
  return n;
}

/** `--name`'s value, which must be given and not empty; the error shows `usage`. */
export function requiredFlag(
  value: string | undefined,
  name: string,
  usage: string,
  Err: UsageErrorClass = FlagError,
): string {
  if (value === undefined || value === '') throw new Err(`--${name} is required\n\n${usage}`);
  return value;
}

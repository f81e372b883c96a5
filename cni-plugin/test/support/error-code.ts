import { CniError } from '../../src/errors';

/** The CNI error code `fn` throws (-1 for another error), undefined when it does not throw. */
export function errorCode(fn: () => unknown): number | undefined {
  try {
    fn();
  } catch (err) {
    return err instanceof CniError ? err.code : -1;
  }
  return undefined;
}

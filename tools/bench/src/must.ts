/**
 * For values the bench itself put in place (a Map entry set up front, an index within bounds):
 * missing only by a programming error, which then fails here, named, rather than as `undefined`
 * further on.
 */
export class MissingValueError extends Error {
  constructor(
    /** what was looked up, with its key: e.g. "rounds of entry acl" */
    readonly what: string,
  ) {
    super(`no ${what}`);
    this.name = 'MissingValueError';
  }
}

/** `v`, or a MissingValueError naming `what` when it is undefined or null. */
export function must<T>(v: T | null | undefined, what: string): T {
  if (v === undefined || v === null) throw new MissingValueError(what);
  return v;
}

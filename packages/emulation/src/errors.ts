/** Base of every error this package throws: a message that says what is wrong and how to fix it. */
export class EmulationError extends Error {
  constructor(
    readonly what: string,
    problem: string,
    readonly fix: string,
    options?: ErrorOptions,
  ) {
    super(`${what}: ${problem}; ${fix}`, options);
    this.name = new.target.name;
  }
}

/** A bad command line of `flowline-emulate`. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

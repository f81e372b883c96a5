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

/** A VF that could not be created; the VFs the same call made before it were removed again. */
export class VfCreationError extends EmulationError {
  constructor(
    readonly pf: string,
    readonly vf: number,
    readonly address: string,
    problem: string,
    fix: string,
    options?: ErrorOptions,
  ) {
    super(`VF ${vf} of ${pf} (${address})`, problem, fix, options);
  }
}

/** A bad command line of `flowline-emulate`. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** A bad request field, named as in the API (spec.hops[1].egress_interface, ...). */
export class InvalidChainError extends Error {
  constructor(
    readonly field: string,
    readonly reason: string,
  ) {
    super(`${field}: ${reason}`);
    this.name = 'InvalidChainError';
  }
}

/** A field that is well formed but names something the switch does not have (yet). */
export class UnresolvedPortError extends Error {
  constructor(
    readonly field: string,
    readonly reason: string,
  ) {
    super(`${field}: ${reason}`);
    this.name = 'UnresolvedPortError';
  }
}

export class ChainExistsError extends Error {
  constructor(readonly chain: string) {
    super(`chain "${chain}" already exists; use UpdateChain to change it`);
    this.name = 'ChainExistsError';
  }
}

export class ChainNotFoundError extends Error {
  constructor(readonly chain: string) {
    super(`chain "${chain}" does not exist`);
    this.name = 'ChainNotFoundError';
  }
}

export class StaleGenerationError extends Error {
  constructor(
    readonly chain: string,
    readonly expected: bigint,
    readonly actual: bigint,
  ) {
    super(`chain "${chain}" is at generation ${actual}, not ${expected}; read it again and retry`);
    this.name = 'StaleGenerationError';
  }
}

/** A hop's NF refused its HopConfig (or cannot be reached); the field names the item. */
export class HopConfigError extends Error {
  constructor(
    readonly field: string,
    readonly reason: string,
  ) {
    super(`${field}: ${reason}`);
    this.name = 'HopConfigError';
  }
}

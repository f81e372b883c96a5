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

/**
 * A new chain's name whose 32-bit flow key (chainKey) is another chain's: the key tells chains
 * apart in cookies and, between nodes, in the tunnel's metadata, so two chains sharing one would
 * steer each other's traffic.
 */
export class ChainKeyConflictError extends Error {
  readonly field = 'name';
  constructor(
    readonly chain: string,
    readonly holder: string,
    readonly key: number,
  ) {
    super(
      `name: chain "${chain}" would share its flow key 0x${key.toString(16).padStart(8, '0')} with chain "${holder}"; choose another name`,
    );
    this.name = 'ChainKeyConflictError';
  }
}

/**
 * A hop config item (a firewall rule's id, a route's prefix, an IPsec policy's id) that another
 * chain already gives the same NF: each chain takes its items back when it goes, so two sharing
 * one would take it from under the other.
 */
export class HopConfigConflictError extends Error {
  constructor(
    readonly field: string,
    readonly reason: string,
  ) {
    super(`${field}: ${reason}`);
    this.name = 'HopConfigConflictError';
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

/** The chain state file's content is not a state file; the field says where (chains[2].name). */
export class StateFileError extends Error {
  constructor(
    readonly field: string,
    readonly reason: string,
  ) {
    super(field ? `${field}: ${reason}` : reason);
    this.name = 'StateFileError';
  }
}

/**
 * A request within the API's rules that would take the controller past one of its limits
 * (chains, concurrent watch streams); `field` names what is limited, `limit` the number.
 */
export class LimitExceededError extends Error {
  constructor(
    readonly field: string,
    readonly limit: number,
    readonly reason: string,
  ) {
    super(`${field}: ${reason}`);
    this.name = 'LimitExceededError';
  }
}

/** A request field that does not validate; `field` is its proto path, e.g. "flows[2].rate_pps". */
export class InvalidArgumentError extends Error {
  constructor(
    readonly field: string,
    reason: string,
  ) {
    super(`${field}: ${reason}`);
    this.name = 'InvalidArgumentError';
  }
}

/** The dataplane could not do what a valid request asked (e.g. DPDK refused); nothing changed. */
export class DataplaneError extends Error {
  constructor(
    readonly operation: string,
    message: string,
  ) {
    super(`${operation}: ${message}`);
    this.name = 'DataplaneError';
  }
}

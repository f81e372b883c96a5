/**
 * Typed errors of @flowline/dpdk. Each carries the context needed to act on it (the option,
 * the devargs, the DPDK call and errno) and its message says how to fix the problem.
 */
export class DpdkError extends Error {
  constructor(
    message: string,
    /** The DPDK call or Flowline operation that failed. */
    readonly op: string,
    /** errno (positive) when DPDK returned one. */
    readonly errno?: number,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** An EAL option that is invalid before DPDK even sees it. */
export class EalOptionError extends DpdkError {
  constructor(
    readonly option: string,
    readonly value: unknown,
    reason: string,
  ) {
    super(`EAL option "${option}" = ${JSON.stringify(value)}: ${reason}`, 'eal-options');
  }
}

/** rte_eal_init failed; `argument` names the EAL argument DPDK complained about when known. */
export class EalInitError extends DpdkError {
  constructor(
    message: string,
    readonly args: readonly string[],
    readonly log: string,
    readonly argument: string | undefined,
    errno?: number,
  ) {
    super(message, 'rte_eal_init', errno);
  }
}

/** The EAL is in the wrong state for the call (not initialised, already initialised, cleaned up). */
export class EalStateError extends DpdkError {
  constructor(message: string) {
    super(message, 'eal-state');
  }
}

/** A devargs string that cannot be probed, or a builder given bad arguments. */
export class DevargsError extends DpdkError {
  constructor(
    readonly devargs: string,
    reason: string,
    errno?: number,
  ) {
    super(`devargs "${devargs}": ${reason}`, 'rte_dev_probe', errno);
  }
}

/** A port operation failed. */
export class PortError extends DpdkError {
  constructor(
    readonly port: string,
    message: string,
    op: string,
    errno?: number,
  ) {
    super(`port ${port}: ${message}`, op, errno);
  }
}

/** A pipeline, stage, rule or route that does not validate or cannot be built. */
export class PipelineError extends DpdkError {
  constructor(
    message: string,
    /** Where in the configuration: e.g. "stages[1].rules[3].dst". */
    readonly path: string,
    op = 'pipeline',
    errno?: number,
  ) {
    super(path ? `${path}: ${message}` : message, op, errno);
  }
}

interface NativeErrorShape {
  message: string;
  errno?: number;
  op?: string;
  log?: string;
}

export function nativeError(e: unknown): NativeErrorShape {
  if (e instanceof Error) {
    const x = e as Error & { errno?: number; op?: string; log?: string };
    return { message: x.message, errno: x.errno, op: x.op, log: x.log };
  }
  return { message: String(e) };
}

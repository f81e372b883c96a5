/** A pod manifest field that the local node cannot run, named as kubectl would name it. */
export class ManifestError extends Error {
  override readonly name = 'ManifestError';
  constructor(
    readonly source: string,
    readonly field: string,
    why: string,
  ) {
    super(`${source}: ${field} ${why}`);
  }
}

/** A node configuration field that is wrong. */
export class NodeConfigError extends Error {
  override readonly name = 'NodeConfigError';
  constructor(
    readonly field: string,
    why: string,
  ) {
    super(`node config: ${field} ${why}`);
  }
}

/** A step of bringing the node up, running a pod or tearing down that failed, and how to fix it. */
export class NodeStepError extends Error {
  override readonly name = 'NodeStepError';
  constructor(
    readonly step: string,
    message: string,
    readonly fix?: string,
    options?: { cause?: unknown },
  ) {
    super(`${step}: ${message}${fix ? ` (fix: ${fix})` : ''}`, options);
  }
}

/**
 * `up` found a node agent running in the state dir: nothing was started, so a caller that takes
 * down what it brought up has nothing to take down (the running node is someone else's).
 */
export class NodeAlreadyUpError extends NodeStepError {
  constructor(readonly pid: number) {
    super('up', `a node agent already runs (pid ${pid})`, 'run flowline down first');
  }
}

/** The CNI plugin answered an error (spec error JSON) or broke the exec protocol. */
export class CniExecError extends Error {
  override readonly name = 'CniExecError';
  constructor(
    readonly command: string,
    readonly code: number,
    readonly msg: string,
    readonly details?: string,
  ) {
    super(`CNI ${command} failed with code ${code}: ${msg}${details ? ` (${details})` : ''}`);
  }
}

/** Base of every error this package throws; `context` says what was being done, with what. */
export class OvsError extends Error {
  constructor(
    message: string,
    readonly context: Record<string, unknown> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The OVSDB socket cannot be reached, or the connection dropped before a reply came. */
export class OvsdbConnectionError extends OvsError {}

/**
 * Connecting to an OVS remote (the TCP or unix connect, and for ssl: the TLS handshake) took
 * longer than it was given; `context` names the remote, the timeout and the phase it was in.
 */
export class OvsConnectTimeoutError extends OvsError {}

/** No reply within the request's timeout. */
export class OvsdbTimeoutError extends OvsError {}

/** A kept OpenFlow connection (src/openflow-echo.ts) cannot be made, or it dropped. */
export class OpenFlowConnectionError extends OvsError {}

/** ovs-vswitchd did not answer an OpenFlow echo in time. */
export class OpenFlowTimeoutError extends OvsError {}

/** The server answered a request with a JSON-RPC error (RFC 7047 section 4.1). */
export class OvsdbRpcError extends OvsError {
  constructor(
    readonly method: string,
    readonly rpcError: unknown,
    context: Record<string, unknown> = {},
  ) {
    super(`OVSDB ${method} failed: ${JSON.stringify(rpcError)}`, { method, ...context });
  }
}

/** One operation of a transact failed (RFC 7047 section 5.2): `index` is its position. */
export class OvsdbTransactionError extends OvsError {
  constructor(
    readonly index: number,
    readonly error: string,
    readonly details: string | undefined,
    readonly operation: unknown,
  ) {
    super(
      `OVSDB transaction failed at operation ${index} (${JSON.stringify(operation).slice(0, 200)}): ` +
        `${error}${details ? ` - ${details}` : ''}`,
      { index, error, details },
    );
  }
}

/** The server sent bytes that are not JSON-RPC (a protocol violation); the connection is closed. */
export class OvsdbProtocolError extends OvsError {}

/** An ovs-ofctl or ovs-vsctl command failed. */
export class OvsCommandError extends OvsError {
  constructor(
    message: string,
    readonly command: readonly string[],
    readonly exitCode: number | null,
    readonly stderr: string,
  ) {
    super(`${message}: \`${command.join(' ')}\` exited ${exitCode}: ${stderr.trim()}`, {
      command,
      exitCode,
    });
  }
}

/** Starting or stopping the private OVS-DPDK failed; `logFile` tells where to look. */
export class OvsLifecycleError extends OvsError {}

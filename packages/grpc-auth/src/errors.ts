/** A security configuration or identity problem, with what it concerns. */
export class GrpcAuthError extends Error {
  override readonly name = 'GrpcAuthError';
  constructor(
    message: string,
    readonly context: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

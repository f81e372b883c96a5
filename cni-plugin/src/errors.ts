/** The CNI spec's well-known error codes (SPEC.md "Error"), plus this plugin's own (100+). */
export const CniCode = {
  IncompatibleVersion: 1,
  UnsupportedField: 2,
  UnknownContainer: 3,
  InvalidEnvironment: 4,
  IoFailure: 5,
  DecodeFailure: 6,
  InvalidConfig: 7,
  TryAgainLater: 11,
  PluginNotAvailable: 50,
  PluginNotAvailableLimitedConnectivity: 51,
  /** ADD for an attachment that already exists (the spec requires an error). */
  AttachmentExists: 101,
  /** CHECK found the attachment in a state other than ADD left it. */
  CheckFailed: 110,
  /** GC removed what it could but some removals failed (details lists them). */
  GcIncomplete: 120,
  /** Anything unexpected. */
  Internal: 999,
} as const;

/** An error reported to the runtime as the spec's error JSON: code, msg, details. */
export class CniError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly details?: string,
    readonly context: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'CniError';
  }

  toJSON(cniVersion: string): Record<string, unknown> {
    const out: Record<string, unknown> = { cniVersion, code: this.code, msg: this.message };
    if (this.details) out.details = this.details;
    return out;
  }
}

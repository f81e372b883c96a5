/** A bad field of a request or config (INVALID_ARGUMENT), named by its path (sa.encryption_key). */
export class IpsecConfigError extends Error {
  constructor(
    readonly field: string,
    readonly reason: string,
  ) {
    super(`${field}: ${reason}`);
    this.name = 'IpsecConfigError';
  }
}

/** No SA or policy of that name (NOT_FOUND). */
export class IpsecNotFoundError extends Error {
  override name = 'IpsecNotFoundError';
}

/** The change would leave the gateway inconsistent, e.g. deleting an SA a policy uses (FAILED_PRECONDITION). */
export class IpsecInUseError extends Error {
  override name = 'IpsecInUseError';
}

/** A policy id already in use (ALREADY_EXISTS). */
export class IpsecExistsError extends Error {
  override name = 'IpsecExistsError';
}

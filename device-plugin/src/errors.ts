/** Base of every error this package throws: a message that says what is wrong and how to fix it. */
export class DevicePluginError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The pool config is invalid. `field` is a JSON path such as `pools[0].selectors.pfNames[1]`. */
export class ConfigError extends DevicePluginError {
  constructor(
    readonly field: string,
    readonly problem: string,
    readonly fix: string,
    readonly file?: string,
  ) {
    super(`${file ? `${file}: ` : ''}${field}: ${problem}; ${fix}`);
  }
}

/** A sysfs attribute has a value we cannot use. */
export class SysfsError extends DevicePluginError {
  constructor(
    readonly path: string,
    readonly problem: string,
    options?: ErrorOptions,
  ) {
    super(`${path}: ${problem}`, options);
  }
}

/** A device ID kubelet sent is not usable (unknown or unhealthy). Mapped to a gRPC status. */
export class DeviceRequestError extends DevicePluginError {
  constructor(
    readonly deviceId: string,
    readonly resourceName: string,
    readonly reason: 'unknown' | 'unhealthy',
    detail: string,
  ) {
    super(
      reason === 'unknown'
        ? `device ${deviceId} is not a device of ${resourceName}; ${detail}`
        : `device ${deviceId} of ${resourceName} is Unhealthy (${detail}); ` +
            'kubelet should pick a Healthy device from ListAndWatch',
    );
  }
}

/** Kubelet refused or did not answer a registration. */
export class RegistrationError extends DevicePluginError {
  constructor(
    readonly resourceName: string,
    readonly kubeletSocket: string,
    problem: string,
    options?: ErrorOptions,
  ) {
    super(
      `registering ${resourceName} at ${kubeletSocket} failed: ${problem}; ` +
        'the plugin retries; check that kubelet runs and uses this plugin directory',
      options,
    );
  }
}

/** A bad command line. */
export class UsageError extends DevicePluginError {}

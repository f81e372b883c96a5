/** Where a configuration value came from, so an error can say where to fix it. */
export type ConfigSource = 'default' | 'file' | 'env' | 'flag';

/** A bad configuration value: names the field, where it came from, and what is wrong. */
export class ConfigError extends Error {
  constructor(
    readonly field: string,
    readonly source: ConfigSource | 'pod',
    readonly reason: string,
    readonly origin?: string,
  ) {
    super(`${field}${origin ? ` (from ${origin})` : ''}: ${reason}`);
    this.name = 'ConfigError';
  }
}

/** A device the pod was given (pod dir file, PCIDEVICE_*, FLOWLINE_NETDEV_*) that cannot be used. */
export class PodDeviceError extends Error {
  constructor(
    readonly origin: string,
    readonly reason: string,
  ) {
    super(`${origin}: ${reason}`);
    this.name = 'PodDeviceError';
  }
}

/**
 * Every resource this plugin advertises is `flowline.io/<pool>` (contract 1,
 * docs/architecture.md#device-plugin-to-pod).
 */
export const RESOURCE_PREFIX = 'flowline.io';

const NAME_PART = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/**
 * Why `name` is not an extended resource name by kubelet's rules (IsExtendedResourceName), or
 * undefined when it is: a qualified name `<domain>/<name>` outside kubernetes.io, not starting
 * with `requests.`, whose quota form `requests.<name>` is itself a valid qualified name.
 */
export function extendedResourceNameProblem(name: string): string | undefined {
  const slash = name.indexOf('/');
  if (slash < 0) return 'must be <domain>/<name>, e.g. flowline.io/sriov_vf';
  const domain = name.slice(0, slash);
  const part = name.slice(slash + 1);
  if (domain === 'kubernetes.io' || domain.endsWith('.kubernetes.io')) {
    return 'the kubernetes.io domain is reserved for native resources';
  }
  if (name.startsWith('requests.')) return 'must not start with "requests."';
  const quotaDomain = `requests.${domain}`;
  if (quotaDomain.length > 253 || !quotaDomain.split('.').every((l) => DNS_LABEL.test(l))) {
    return `domain "${domain}" is not a lower-case DNS subdomain`;
  }
  if (part.length === 0 || part.length > 63) return 'the name after "/" must be 1-63 characters';
  if (!NAME_PART.test(part)) {
    return 'the name after "/" must be letters, digits, "-", "_" or "." and start and end with a letter or digit';
  }
  return undefined;
}

export function resourceNameOf(pool: string): string {
  return `${RESOURCE_PREFIX}/${pool}`;
}

/** `flowline.io/sriov_vf` → `FLOWLINE_IO_SRIOV_VF`, the suffix of every env name we set. */
export function envSuffix(resourceName: string): string {
  return resourceName.toUpperCase().replace(/[^A-Z0-9]/g, '_');
}

/** PCI addresses of the allocated VFs (sriov-network-device-plugin's convention). */
export function pciEnvName(resourceName: string): string {
  return `PCIDEVICE_${envSuffix(resourceName)}`;
}

/** Kernel interface names of allocated netdevice VFs. */
export function netdevEnvName(resourceName: string): string {
  return `FLOWLINE_NETDEV_${envSuffix(resourceName).replace(/^FLOWLINE_IO_/, '')}`;
}

/** Socket file of a pool's DevicePlugin server in the plugin directory. */
export function endpointOf(resourceName: string): string {
  return `flowline-${resourceName.slice(resourceName.indexOf('/') + 1)}.sock`;
}

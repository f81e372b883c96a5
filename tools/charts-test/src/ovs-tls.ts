import { X509Certificate } from 'node:crypto';
import { find, type Manifest, type Values } from './helm';
import { podOf } from './security';

/** Where the OVS containers (switch and chain controller) read tls.key, tls.crt and ca.crt. */
export const OVS_TLS_DIR = '/etc/flowline/ovs-tls';

/** A pod volume as the charts write them: a whole Secret, or a projection of Secret and ConfigMap keys. */
export interface Volume {
  name: string;
  secret?: { secretName: string; defaultMode?: number };
  projected?: {
    defaultMode?: number;
    sources: {
      secret?: { name: string; items?: { key: string; path: string }[] };
      configMap?: { name: string; items?: { key: string; path: string }[] };
    }[];
  };
}

/** The volume a workload's first container mounts at OVS_TLS_DIR (undefined: none). */
export function ovsTlsVolume(workload: Manifest): Volume | undefined {
  const pod = podOf(workload);
  const mount = pod.spec.containers[0]?.volumeMounts?.find((m) => m.mountPath === OVS_TLS_DIR);
  if (!mount) return undefined;
  const v = (pod.spec.volumes as Volume[] | undefined)?.find((x) => x.name === mount.name);
  if (!v)
    throw new Error(`${workload.metadata.name} mounts a volume ${mount.name} it does not have`);
  return v;
}

/** Every Secret any pod of the manifests mounts (whole or projected). */
export function mountedSecrets(ms: Manifest[]): Set<string> {
  const out = new Set<string>();
  for (const m of ms) {
    if (!['DaemonSet', 'Deployment', 'StatefulSet'].includes(m.kind)) continue;
    for (const v of (podOf(m).spec.volumes ?? []) as Volume[]) {
      if (v.secret) out.add(v.secret.secretName);
      for (const s of v.projected?.sources ?? []) if (s.secret) out.add(s.secret.name);
    }
  }
  return out;
}

/** A Secret's data, decoded. */
export function secretData(ms: Manifest[], name: string): Record<string, string> {
  const s = find(ms, 'Secret', name) as unknown as { data: Record<string, string> };
  return Object.fromEntries(
    Object.entries(s.data).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()]),
  );
}

/** The files the OVS TLS volume of a workload holds, from a whole-Secret volume. */
export function ovsTlsFiles(ms: Manifest[], workload: Manifest): Record<string, string> {
  const v = ovsTlsVolume(workload);
  if (!v?.secret)
    throw new Error(`${workload.metadata.name} mounts no whole Secret at ${OVS_TLS_DIR}`);
  return secretData(ms, v.secret.secretName);
}

/** The names a certificate proves: its subject CN and its DNS SANs. */
export function certNames(pem: string): { cn: string | undefined; dns: string[] } {
  const cert = new X509Certificate(pem);
  return {
    cn: /(?:^|\n)CN=(.*)/.exec(cert.subject)?.[1],
    dns: (cert.subjectAltName ?? '')
      .split(/,\s*/)
      .filter((s) => s.startsWith('DNS:'))
      .map((s) => s.slice(4)),
  };
}

/** Whether `ca` issued and signed `leaf`. */
export function signedBy(leaf: string, ca: string): boolean {
  const l = new X509Certificate(leaf);
  const c = new X509Certificate(ca);
  return l.checkIssued(c) && l.verify(c.publicKey);
}

/**
 * ovs.remote.tls.certManager for tls.certManager.enabled: two CA issuers (the controller's an
 * Issuer, the switches' a ClusterIssuer) and the ConfigMaps holding each CA's certificate.
 */
export function ovsCertManagerValues(extra: Values = {}): Values {
  return {
    controllerIssuerRef: { name: 'ovs-controller-ca', kind: 'Issuer' },
    switchIssuerRef: { name: 'ovs-switch-ca', kind: 'ClusterIssuer' },
    controllerCaConfigMap: { name: 'ovs-controller-ca', key: 'ca.crt' },
    switchCaConfigMap: { name: 'ovs-switch-ca', key: 'root.pem' },
    ...extra,
  };
}

import type { Manifest } from './helm';

export interface Container {
  name: string;
  image: string;
  env?: { name: string; value?: string; valueFrom?: unknown }[];
  ports?: { name?: string; containerPort: number }[];
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: {
    privileged?: boolean;
    allowPrivilegeEscalation?: boolean;
    readOnlyRootFilesystem?: boolean;
    runAsUser?: number;
    runAsNonRoot?: boolean;
    capabilities?: { add?: string[]; drop?: string[] };
  };
  volumeMounts?: { name: string; mountPath: string; subPathExpr?: string; readOnly?: boolean }[];
  startupProbe?: Record<string, unknown>;
  livenessProbe?: Record<string, unknown>;
  readinessProbe?: Record<string, unknown>;
  command?: string[];
  args?: string[];
}

export interface PodSpec {
  containers: Container[];
  volumes?: {
    name: string;
    hostPath?: { path: string; type?: string };
    emptyDir?: { medium?: string };
    configMap?: { name: string };
    secret?: { secretName: string; defaultMode?: number };
  }[];
  hostNetwork?: boolean;
  securityContext?: {
    runAsNonRoot?: boolean;
    runAsUser?: number;
    seccompProfile?: { type: string };
  };
  serviceAccountName?: string;
}

/** The pod template of a workload (Deployment, DaemonSet, StatefulSet). */
export function podOf(m: Manifest): {
  metadata: { annotations?: Record<string, string>; labels?: Record<string, string> };
  spec: PodSpec;
} {
  const spec = m.spec as { template?: { metadata: object; spec: PodSpec } };
  if (!spec?.template) throw new Error(`${m.kind} ${m.metadata.name} has no pod template`);
  return spec.template as never;
}

export function envOf(c: Container): Record<string, string> {
  return Object.fromEntries(
    (c.env ?? []).filter((e) => e.value !== undefined).map((e) => [e.name, e.value!]),
  );
}

/** The checks every Flowline container passes: never privileged, capabilities dropped then only the listed added. */
export function securityProblems(c: Container, allowedAdd: string[]): string[] {
  const p: string[] = [];
  const sc = c.securityContext;
  if (!sc) return [`${c.name}: no securityContext`];
  if (sc.privileged !== false) p.push(`${c.name}: privileged must be false`);
  if (sc.allowPrivilegeEscalation !== false)
    p.push(`${c.name}: allowPrivilegeEscalation must be false`);
  if (!sc.capabilities?.drop?.includes('ALL'))
    p.push(`${c.name}: capabilities.drop must include ALL`);
  for (const cap of sc.capabilities?.add ?? [])
    if (!allowedAdd.includes(cap)) p.push(`${c.name}: capability ${cap} is not needed`);
  return p;
}

/** A Guaranteed container with integer CPUs: what the static CPU manager pins. */
export function pinnedProblems(c: Container): string[] {
  const p: string[] = [];
  const req = c.resources?.requests ?? {};
  const lim = c.resources?.limits ?? {};
  for (const k of new Set([...Object.keys(req), ...Object.keys(lim)])) {
    if (req[k] !== lim[k]) p.push(`${c.name}: ${k} request ${req[k]} != limit ${lim[k]}`);
  }
  if (!/^[1-9][0-9]*$/.test(String(lim.cpu)))
    p.push(`${c.name}: cpu ${lim.cpu} is not a whole number`);
  if (!lim.memory) p.push(`${c.name}: no memory limit`);
  return p;
}

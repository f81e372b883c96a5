// Chain files for `flowline chain create -f`: YAML or JSON documents of the chain.v1 shape,
// {name, spec: {classifier, hops, egressPort, failurePolicy, bidirectional, priority}}. The
// controller validates the spec and names any bad field; this only checks the envelope.
import { parseAllDocuments } from 'yaml';
import type { chainV1 } from '@flowline/proto';

export class ChainFileError extends Error {
  override readonly name = 'ChainFileError';
}

export interface ChainDocument {
  name: string;
  spec: chainV1.ChainSpec;
}

export function parseChainFile(text: string, source: string): ChainDocument[] {
  const out: ChainDocument[] = [];
  parseAllDocuments(text).forEach((doc, i) => {
    const where = `${source} (document ${i + 1})`;
    if (doc.errors.length)
      throw new ChainFileError(`${where}: not valid YAML: ${doc.errors[0]!.message}`);
    const value = doc.toJS() as unknown;
    if (value === null || value === undefined) return;
    if (typeof value !== 'object' || Array.isArray(value))
      throw new ChainFileError(`${where}: must be a mapping with name and spec`);
    const v = value as Record<string, unknown>;
    if (typeof v.name !== 'string' || v.name === '')
      throw new ChainFileError(`${where}: name must be a non-empty string`);
    if (typeof v.spec !== 'object' || v.spec === null || Array.isArray(v.spec))
      throw new ChainFileError(
        `${where}: spec must be a mapping (classifier, hops, egressPort, ...)`,
      );
    out.push({ name: v.name, spec: v.spec as chainV1.ChainSpec });
  });
  if (out.length === 0) throw new ChainFileError(`${source}: holds no chain`);
  return out;
}

/** A pod of the node as a chain may name it: its key and its interfaces. */
export interface ChainablePod {
  key: string;
  interfaces: string[];
}

/**
 * Checks that every pod a chain names runs on this node, with the interface named, before the
 * controller is asked; the error lists the pods (or the pod's interfaces) that do exist. Raw
 * OVS ports and instance names (no `/`) are the controller's to check.
 */
export function checkChainPods(docs: ChainDocument[], pods: ChainablePod[], source: string): void {
  const byKey = new Map(pods.map((p) => [p.key, p]));
  const known = pods.map((p) => p.key).join(', ') || 'none';
  const podNamed = (key: string, where: string): ChainablePod => {
    const pod = byKey.get(key);
    if (!pod)
      throw new ChainFileError(
        `${where}: no pod ${key} runs on this node (pods: ${known}); run it with flowline apply -f <pod.yaml>, or name one of these`,
      );
    return pod;
  };
  const iface = (pod: ChainablePod, ifname: string | undefined | null, where: string): void => {
    if (ifname && !pod.interfaces.includes(ifname))
      throw new ChainFileError(
        `${where}: pod ${pod.key} has no interface ${ifname} (interfaces: ${pod.interfaces.join(', ') || 'none'})`,
      );
  };
  const port = (value: string | undefined | null, where: string): void => {
    if (!value) return;
    const parts = value.split('/');
    if (parts.length !== 3) return;
    iface(podNamed(`${parts[0]}/${parts[1]}`, where), parts[2], where);
  };
  for (const d of docs) {
    const at = `${source}: chain ${d.name}: spec`;
    port(d.spec.classifier?.ingressPort, `${at}.classifier.ingressPort`);
    (d.spec.hops ?? []).forEach((h, i) => {
      // An instance name without a namespace is the controller's to resolve.
      if (!h.nf?.includes('/')) return;
      const pod = podNamed(h.nf, `${at}.hops[${i}].nf`);
      iface(pod, h.ingressInterface, `${at}.hops[${i}].ingressInterface`);
      iface(pod, h.egressInterface, `${at}.hops[${i}].egressInterface`);
    });
    port(d.spec.egressPort, `${at}.egressPort`);
  }
}

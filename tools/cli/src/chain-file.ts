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

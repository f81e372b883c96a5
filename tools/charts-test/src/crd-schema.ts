import Ajv, { type ErrorObject } from 'ajv';
import addFormats from 'ajv-formats';
import type { Manifest } from './helm';

type SchemaNode = Record<string, unknown>;

/**
 * The schema as the API server applies it with strict field validation (kubectl's default,
 * --validate=strict): a field the structural schema does not declare is an error, not pruned.
 * Every object schema with properties (and without x-kubernetes-preserve-unknown-fields) gets
 * additionalProperties: false; metadata (no properties listed) stays open.
 */
function strictFields(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(strictFields);
  if (!node || typeof node !== 'object') return node;
  const out: SchemaNode = {};
  for (const [k, v] of Object.entries(node as SchemaNode))
    out[k] =
      k === 'properties'
        ? Object.fromEntries(Object.entries(v as SchemaNode).map(([p, s]) => [p, strictFields(s)]))
        : strictFields(v);
  if (
    out.properties &&
    out.additionalProperties === undefined &&
    out['x-kubernetes-preserve-unknown-fields'] !== true
  )
    out.additionalProperties = false;
  return out;
}

/**
 * A validator for custom resources from a CRD's openAPIV3Schema (the structural schema the API
 * server applies). CEL rules (x-kubernetes-validations) are not evaluated here. With
 * `unknownFields: 'strict'` an undeclared field is refused, as strict field validation does
 * (default: allowed, as the API server's pruning drops it silently).
 */
export function crdValidator(
  crd: Manifest,
  version: string,
  opts: { unknownFields?: 'prune' | 'strict' } = {},
): (obj: unknown) => string[] {
  const spec = crd.spec as { versions: { name: string; schema: { openAPIV3Schema: object } }[] };
  const v = spec.versions.find((x) => x.name === version);
  if (!v) throw new Error(`CRD ${crd.metadata.name} has no version ${version}`);
  const ajv = new Ajv({ allErrors: true, strict: false });
  addFormats(ajv);
  ajv.addFormat('int64', true);
  ajv.addFormat('int32', true);
  const schema =
    opts.unknownFields === 'strict'
      ? (strictFields(v.schema.openAPIV3Schema) as object)
      : v.schema.openAPIV3Schema;
  const validate = ajv.compile(schema);
  return (obj) =>
    validate(obj)
      ? []
      : (validate.errors ?? []).map((e: ErrorObject) => `${e.instancePath || '/'} ${e.message}`);
}

import Ajv, { type ErrorObject } from 'ajv';
import addFormats from 'ajv-formats';
import type { Manifest } from './helm';

/**
 * A validator for custom resources from a CRD's openAPIV3Schema (the structural schema the API
 * server applies). CEL rules (x-kubernetes-validations) are not evaluated here.
 */
export function crdValidator(crd: Manifest, version: string): (obj: unknown) => string[] {
  const spec = crd.spec as { versions: { name: string; schema: { openAPIV3Schema: object } }[] };
  const v = spec.versions.find((x) => x.name === version);
  if (!v) throw new Error(`CRD ${crd.metadata.name} has no version ${version}`);
  const ajv = new Ajv({ allErrors: true, strict: false });
  addFormats(ajv);
  ajv.addFormat('int64', true);
  ajv.addFormat('int32', true);
  const validate = ajv.compile(v.schema.openAPIV3Schema);
  return (obj) =>
    validate(obj)
      ? []
      : (validate.errors ?? []).map((e: ErrorObject) => `${e.instancePath || '/'} ${e.message}`);
}

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
// Ajv 6 (draft-07: if/then, const), the copy the workspace root has through ESLint.
import Ajv from 'ajv';

const schema = JSON.parse(
  readFileSync(join(__dirname, '..', 'device-info.schema.json'), 'utf8'),
) as object;
const validate = new Ajv({ allErrors: true }).compile(schema);

/** The spec's schema errors for `value` (empty when it is a valid device-info). */
export function deviceInfoErrors(value: unknown): string[] {
  if (validate(value)) return [];
  return (validate.errors ?? []).map((e) => `${e.dataPath || '/'} ${e.message ?? ''}`);
}

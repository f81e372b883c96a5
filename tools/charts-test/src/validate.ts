import Ajv2020 from 'ajv/dist/2020';
import { join } from 'node:path';
import ts from 'typescript';
import { certificateProblems } from './cert-manager';
import type { Manifest } from './helm';
import { projectRoot } from './paths';

/** A manifest that the Kubernetes API would refuse: which object, and every reason. */
export class ManifestError extends Error {
  constructor(
    readonly object: string,
    readonly reasons: string[],
  ) {
    super(`${object}: ${reasons.join('; ')}`);
    this.name = 'ManifestError';
  }
}

const id = (m: Manifest) => `${m.apiVersion} ${m.kind} ${m.metadata?.name ?? '(no name)'}`;

/**
 * The typed model module of an apiVersion/kind: kubernetes-models for Kubernetes' own APIs (its
 * validators are compiled from the Kubernetes OpenAPI schema), @kubernetes-models/prometheus-operator
 * for ServiceMonitor. Undefined for kinds no package models.
 */
function modelModule(apiVersion: string, kind: string): string | undefined {
  if (apiVersion.startsWith('monitoring.coreos.com/'))
    return `@kubernetes-models/prometheus-operator/${apiVersion}/${kind}`;
  if (apiVersion.startsWith('k8s.cni.cncf.io/')) return undefined;
  if (apiVersion.startsWith('cert-manager.io/')) return undefined;
  return `kubernetes-models/${apiVersion}/${kind}`;
}

/** Multus' NetworkAttachmentDefinition (no npm package models it): its CRD's schema, strict. */
const nadSchema = {
  type: 'object',
  required: ['apiVersion', 'kind', 'metadata', 'spec'],
  additionalProperties: false,
  properties: {
    apiVersion: { const: 'k8s.cni.cncf.io/v1' },
    kind: { const: 'NetworkAttachmentDefinition' },
    metadata: { type: 'object', required: ['name'] },
    spec: {
      type: 'object',
      additionalProperties: false,
      required: ['config'],
      properties: { config: { type: 'string', minLength: 2 } },
    },
  },
};
const ajv = new Ajv2020({ allErrors: true, strict: false });
const validateNad = ajv.compile(nadSchema);

/**
 * Validates one manifest against its API schema (types, required fields, enums, formats). Throws
 * a ManifestError naming the object and the failing fields; throws too for a kind it has no
 * schema for, so nothing passes unchecked.
 */
export async function validateSchema(m: Manifest): Promise<void> {
  if (!m || typeof m.apiVersion !== 'string' || typeof m.kind !== 'string') {
    throw new ManifestError(String(m?.kind), ['apiVersion and kind must be strings']);
  }
  if (m.kind === 'NetworkAttachmentDefinition') {
    if (!validateNad(m))
      throw new ManifestError(
        id(m),
        (validateNad.errors ?? []).map((e) => `${e.instancePath} ${e.message}`),
      );
    return;
  }
  if (m.apiVersion === 'cert-manager.io/v1' && m.kind === 'Certificate') {
    const problems = certificateProblems(m);
    if (problems.length > 0) throw new ManifestError(id(m), problems);
    return;
  }
  const path = modelModule(m.apiVersion, m.kind);
  let mod: Record<string, unknown>;
  try {
    mod = (await import(path!)) as Record<string, unknown>;
  } catch {
    throw new ManifestError(id(m), [`no schema for ${m.apiVersion} ${m.kind} (module ${path})`]);
  }
  const Model = mod[m.kind] as (new (data: unknown) => { validate(): void }) | undefined;
  if (!Model) throw new ManifestError(id(m), [`${path} has no ${m.kind}`]);
  try {
    new Model(m).validate();
  } catch (e) {
    throw new ManifestError(id(m), [(e as Error).message]);
  }
}

/**
 * The OpenAPI validators accept fields the schema does not know (the API server rejects them:
 * kubectl's field validation is strict by default). This check type-checks every manifest as an
 * object literal of its kubernetes-models interface with the TypeScript compiler, whose excess
 * property checks name each unknown field, nested ones included. One compiler run for a batch.
 */
export function checkKnownFields(manifests: Manifest[]): void {
  const lines: string[] = [];
  const owners: { from: number; to: number; m: Manifest }[] = [];
  manifests.forEach((m, i) => {
    const mod = modelModule(m.apiVersion, m.kind);
    if (!mod) return;
    const from = lines.length;
    const body = JSON.stringify(m, null, 2).split('\n');
    lines.push(
      `export const m${i}: import(${JSON.stringify(mod)}).I${m.kind} = ${body[0]}`,
      ...body.slice(1),
    );
    lines[lines.length - 1] += ';';
    owners.push({ from, to: lines.length, m });
  });
  const file = join(projectRoot, '.bin', 'known-fields-check.ts');
  const text = lines.join('\n');
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    module: ts.ModuleKind.CommonJS,
    moduleResolution: ts.ModuleResolutionKind.Node10,
    target: ts.ScriptTarget.ES2022,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, lang, ...rest) =>
    name === file ? ts.createSourceFile(name, text, lang) : getSourceFile(name, lang, ...rest);
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => name === file || fileExists(name);
  const program = ts.createProgram([file], options, host);
  const diagnostics = ts.getPreEmitDiagnostics(program).filter((d) => d.file?.fileName === file);
  if (diagnostics.length === 0) return;
  const byObject = new Map<string, string[]>();
  for (const d of diagnostics) {
    const line = d.file!.getLineAndCharacterOfPosition(d.start ?? 0).line;
    const owner = owners.find((o) => line >= o.from && line < o.to);
    const key = owner ? id(owner.m) : 'unknown object';
    // JSON keys are quoted property names: report 'name', not '"name"'.
    const message = ts
      .flattenDiagnosticMessageText(d.messageText, ' ')
      .replace(/'"([^"']+)"'/g, "'$1'");
    const near = lines[line]!.trim().slice(0, 80);
    byObject.set(key, [...(byObject.get(key) ?? []), `${message} (at ${near})`]);
  }
  const [first] = byObject;
  throw new ManifestError(first![0], [...byObject.values()].flat());
}

/** Both checks for every manifest. */
export async function validateAll(manifests: Manifest[]): Promise<void> {
  for (const m of manifests) await validateSchema(m);
  checkKnownFields(manifests);
}

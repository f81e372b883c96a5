// Files a pod manifest names for its NF (FLOWLINE_CONFIG), as the operator wrote them: a
// relative path is taken from the manifest's own folder, so an example set works from wherever
// it is applied. Before the manifest is handed to the agent, each path is made absolute and
// checked: a missing file is refused naming the manifest, the field and the path, instead of
// an NF that exits at start and restarts forever.
import { statSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { ManifestError } from './errors';

/** Environment variables of the NF container whose value is a file the NF reads. */
export const FILE_ENV: readonly string[] = ['FLOWLINE_CONFIG'];

const isFile = (path: string): boolean => {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
};

/**
 * The manifest's text with every FILE_ENV path absolute (relative ones resolved against the
 * manifest's folder). Throws ManifestError when a named file is not there. The manifest must
 * already have passed parsePods (this reads only the fields it rewrites).
 */
export function resolveManifestFiles(text: string, manifestFile: string): string {
  const docs = parseAllDocuments(text);
  const base = dirname(resolve(manifestFile));
  let changed = false;
  docs.forEach((doc, d) => {
    const source = docs.length > 1 ? `${manifestFile}#${d + 1}` : manifestFile;
    const env: unknown = doc.getIn(['spec', 'containers', 0, 'env']);
    const items = (env as { items?: unknown[] } | undefined)?.items ?? [];
    items.forEach((_, i) => {
      const name: unknown = doc.getIn(['spec', 'containers', 0, 'env', i, 'name']);
      const value: unknown = doc.getIn(['spec', 'containers', 0, 'env', i, 'value']);
      if (typeof name !== 'string' || !FILE_ENV.includes(name) || typeof value !== 'string') return;
      const path = isAbsolute(value) ? value : resolve(base, value);
      if (!isFile(path))
        throw new ManifestError(
          source,
          `spec.containers[0].env[${i}].value`,
          `(${name}) names ${value}, which is not a file${path === value ? '' : ` (looked for ${path}: a relative path is taken from the manifest's folder)`}`,
        );
      if (path === value) return;
      doc.setIn(['spec', 'containers', 0, 'env', i, 'value'], path);
      changed = true;
    });
  });
  // Unchanged manifests go to the agent byte for byte.
  return changed ? docs.map(String).join('') : text;
}

// The agent looks at its manifests folder and its state file twice a second. Reading and
// parsing them each time cost it 2-3 % of a core on an idle node (issue 23's idle target), so
// each is read again only when it changed: another inode, size, modification or change time.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { type PodSpec, parsePods } from './manifest';

/** A file's identity and version, or undefined when it is not there. */
export function fileVersion(path: string): string | undefined {
  try {
    const s = statSync(path, { bigint: true });
    return `${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
  } catch {
    return undefined;
  }
}

/** One value derived from a file, derived again only when the file changed. */
export class FileDerived<T> {
  private version: string | undefined | null = null;
  private value: T | undefined;
  /** How many times `derive` ran (what the cache saved shows in tests). */
  derivations = 0;

  constructor(private readonly derive: () => T) {}

  get(path: string): T {
    const version = fileVersion(path);
    if (this.version === null || version === undefined || version !== this.version) {
      this.derivations++;
      this.value = this.derive();
      this.version = version;
    }
    return this.value as T;
  }
}

/** A manifest's pods with each spec's canonical text (what the state records), or its error. */
export interface ManifestRead {
  file: string;
  pods?: { spec: PodSpec; text: string }[];
  error?: string;
}

/** The manifests folder's *.yaml / *.yml files in name order, each parsed again only when changed. */
export class ManifestCache {
  private readonly parsed = new Map<string, { version: string; pods: ManifestRead['pods'] }>();
  /** How many files were parsed. */
  parses = 0;

  read(dir: string): ManifestRead[] {
    let files: string[];
    try {
      files = readdirSync(dir)
        .filter((f) => /\.ya?ml$/.test(f))
        .sort();
    } catch {
      this.parsed.clear();
      return [];
    }
    for (const f of [...this.parsed.keys()]) if (!files.includes(f)) this.parsed.delete(f);
    return files.map((f) => {
      const path = join(dir, f);
      const version = fileVersion(path);
      const hit = this.parsed.get(f);
      if (hit && version !== undefined && hit.version === version)
        return { file: f, pods: hit.pods };
      this.parsed.delete(f);
      try {
        this.parses++;
        const pods = parsePods(readFileSync(path, 'utf8'), f).map((spec) => ({
          spec,
          text: JSON.stringify(spec),
        }));
        if (version !== undefined) this.parsed.set(f, { version, pods });
        return { file: f, pods };
      } catch (err) {
        return { file: f, error: (err as Error).message };
      }
    });
  }
}

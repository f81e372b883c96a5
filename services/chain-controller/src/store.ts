import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { chainV1 } from '@flowline/proto';
import { readStateFile, writeStateFile } from '@flowline/state-file';
import type { Logger } from '@flowline/telemetry';
import { StateFileError } from './errors';
import { validateChainName } from './spec';

/** What survives a controller restart: each chain's spec as given, and its generation. */
export interface StoredChain {
  name: string;
  spec: chainV1.ChainSpec;
  generation: string;
  /** Set when something besides the gRPC API manages the chain (a ServiceChain resource). */
  owner?: string;
}

export interface ChainStore {
  load(): Promise<StoredChain[]>;
  save(chains: StoredChain[]): Promise<void>;
}

export const STATE_VERSION = 1;

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Parses the state file's content, checking its shape: `{ version: 1, chains: [{ name, spec,
 * generation, owner? }] }` with DNS-label names (each once), object specs and decimal
 * generations. Throws StateFileError naming the field, so that valid JSON that is not a
 * state file (an empty object, a truncated array turned into `[]`) counts as garbled too.
 * The specs' content is validated when the controller loads them, chain by chain.
 */
export function parseChainState(text: string): StoredChain[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new StateFileError('', `not JSON: ${(err as Error).message}`);
  }
  if (!isObject(doc)) throw new StateFileError('', 'is not a JSON object');
  if (doc.version !== STATE_VERSION)
    throw new StateFileError(
      'version',
      `is ${JSON.stringify(doc.version)}; this controller reads version ${STATE_VERSION}`,
    );
  if (!Array.isArray(doc.chains)) throw new StateFileError('chains', 'is not an array');
  const seen = new Set<string>();
  return doc.chains.map((c: unknown, i): StoredChain => {
    const at = `chains[${i}]`;
    if (!isObject(c)) throw new StateFileError(at, 'is not an object');
    let name: string;
    try {
      name = validateChainName(typeof c.name === 'string' ? c.name : undefined);
    } catch (err) {
      throw new StateFileError(`${at}.name`, (err as Error).message);
    }
    if (seen.has(name)) throw new StateFileError(`${at}.name`, `"${name}" appears twice`);
    seen.add(name);
    if (!isObject(c.spec)) throw new StateFileError(`${at}.spec`, 'is not an object');
    if (typeof c.generation !== 'string' || !/^[1-9][0-9]{0,19}$/.test(c.generation))
      throw new StateFileError(`${at}.generation`, 'is not a positive decimal string');
    if (c.owner !== undefined && typeof c.owner !== 'string')
      throw new StateFileError(`${at}.owner`, 'is not a string');
    return {
      name,
      spec: c.spec as chainV1.ChainSpec,
      generation: c.generation,
      ...(c.owner !== undefined ? { owner: c.owner } : {}),
    };
  });
}

/**
 * A JSON file written crash-safely by @flowline/state-file (unique tmp, fsync, rename, fsync of
 * the directory; the replaced content kept as `.prev`). A file that does not parse, or parses
 * to something that is not a state file, is moved aside (`.corrupt-<time>`) and logged with
 * its parse error; the previous copy is used when it parses, else the controller starts with
 * no chains. Only I/O errors other than "missing" stop the start.
 */
export class FileChainStore implements ChainStore {
  constructor(
    readonly path: string,
    private readonly logger?: Logger,
  ) {}

  async load(): Promise<StoredChain[]> {
    const { value, source, problems } = await readStateFile(this.path, parseChainState);
    for (const p of problems)
      this.logger?.error('chain state file unusable', {
        file: p.file,
        error: p.error,
        ...(p.movedTo ? { movedTo: p.movedTo } : {}),
      });
    if (problems.length > 0)
      this.logger?.warn(
        source === 'previous'
          ? 'chain state restored from the previous copy'
          : 'no usable chain state; starting with no chains',
        { file: this.path, source, chains: value?.length ?? 0 },
      );
    // A previous copy read is the current file again (state-file puts it back), so a restart
    // before the next change finds it there.
    return value ?? [];
  }

  async save(chains: StoredChain[]): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true });
    await writeStateFile(
      this.path,
      JSON.stringify({ version: STATE_VERSION, chains }, null, 2) + '\n',
      { mode: 0o600 },
    );
  }
}

export class MemoryChainStore implements ChainStore {
  private chains: StoredChain[] = [];
  async load(): Promise<StoredChain[]> {
    return structuredClone(this.chains);
  }
  async save(chains: StoredChain[]): Promise<void> {
    this.chains = structuredClone(chains);
  }
}

import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { chainV1 } from '@flowline/proto';

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

/** A JSON file, replaced atomically (write aside, fsync by rename) so a crash never leaves half of it. */
export class FileChainStore implements ChainStore {
  constructor(readonly path: string) {}

  async load(): Promise<StoredChain[]> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const parsed = JSON.parse(text) as { version: number; chains: StoredChain[] };
    if (parsed.version !== 1)
      throw new Error(`${this.path}: unknown state version ${parsed.version}`);
    return parsed.chains;
  }

  async save(chains: StoredChain[]): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true });
    const tmp = `${this.path}.tmp-${process.pid}`;
    await writeFile(tmp, JSON.stringify({ version: 1, chains }, null, 2) + '\n', { mode: 0o600 });
    await rename(tmp, this.path);
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

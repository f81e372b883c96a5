import type { chainV1 } from '@flowline/proto';
import type { ResolvedChain } from './flows';
import type { HopConfigUndo } from './hop-configs';
import type { ValidChainSpec } from './spec';
import type { StoredChain } from './store';

export type ChainPhase = 'PENDING' | 'ACTIVE' | 'DEGRADED' | 'FAILED';
export type ChainEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

/** One chain as the controller holds it in memory. */
export interface ChainState {
  name: string;
  /** The spec as given (what is stored and reported back). */
  raw: chainV1.ChainSpec;
  spec: ValidChainSpec;
  generation: bigint;
  /** Who manages the chain besides the gRPC API, e.g. "ServiceChain/<namespace>/<name>". */
  owner?: string;
  /** Its endpoints' OVS ports, once they resolved; a chain without them is not programmed. */
  resolved?: ResolvedChain;
  phase: ChainPhase;
  message: string;
  updatedAt: number;
  /** Undoes the hop configs applied to the NFs for this chain, last first. */
  nfUndo?: HopConfigUndo[];
}

/** What the store keeps of a chain: the spec as given, the generation, the owner. */
export function toStored(state: ChainState): StoredChain {
  return {
    name: state.name,
    spec: state.raw,
    generation: String(state.generation),
    ...(state.owner ? { owner: state.owner } : {}),
  };
}

/** A stored chain back in memory, PENDING until it is programmed; `spec` is its validated spec. */
export function fromStored(stored: StoredChain, spec: ValidChainSpec, now: number): ChainState {
  return {
    name: stored.name,
    raw: stored.spec,
    spec,
    generation: BigInt(stored.generation),
    ...(stored.owner ? { owner: stored.owner } : {}),
    phase: 'PENDING',
    message: 'loaded from the store',
    updatedAt: now,
  };
}

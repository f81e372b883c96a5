// `flowline chain create|update -f`: a file of several chains is one change. When a document
// fails, what the run did before it is undone (chains it created are deleted, chains it updated
// get their old spec back), and the error says what was undone and what could not be.
import type { chainV1 } from '@flowline/proto';
import type { ChainDocument } from './chain-file';
import { grpcMessage } from './clients';

/** The ChainService calls applying a file needs. */
export interface ChainCalls {
  create(doc: ChainDocument): Promise<chainV1.Chain__Output>;
  update(doc: ChainDocument): Promise<chainV1.Chain__Output>;
  get(name: string): Promise<chainV1.Chain__Output>;
  delete(name: string): Promise<void>;
}

export class ChainApplyError extends Error {
  override readonly name = 'ChainApplyError';
  constructor(
    readonly action: 'create' | 'update',
    /** The document's chain that failed. */
    readonly chain: string,
    readonly undone: string[],
    readonly notUndone: string[],
    cause: unknown,
  ) {
    super(
      `chain ${action} ${chain}: ${grpcMessage(cause)}` +
        (undone.length
          ? `; ${action === 'create' ? 'deleted again' : 'put back as they were'}: ${undone.join(', ')}`
          : '') +
        (notUndone.length ? `; could not be undone: ${notUndone.join(', ')}` : ''),
      { cause },
    );
  }
}

export async function applyChainDocuments(
  calls: ChainCalls,
  action: 'create' | 'update',
  docs: ChainDocument[],
): Promise<chainV1.Chain__Output[]> {
  const made: chainV1.Chain__Output[] = [];
  // What each update replaced, to put back.
  const replaced: ChainDocument[] = [];
  for (const doc of docs) {
    try {
      if (action === 'update') {
        const old = await calls.get(doc.name);
        replaced.push({ name: doc.name, spec: old.spec as chainV1.ChainSpec });
        made.push(await calls.update(doc));
      } else {
        made.push(await calls.create(doc));
      }
    } catch (err) {
      const done =
        action === 'create' ? made.map((c) => ({ name: c.name })) : replaced.slice(0, made.length);
      const undone: string[] = [];
      const notUndone: string[] = [];
      for (const d of done.reverse()) {
        try {
          if (action === 'create') await calls.delete(d.name);
          else await calls.update(d as ChainDocument);
          undone.push(d.name);
        } catch (undoErr) {
          notUndone.push(`${d.name} (${grpcMessage(undoErr)})`);
        }
      }
      throw new ChainApplyError(action, doc.name, undone, notUndone, err);
    }
  }
  return made;
}

import type { LocalPki, TlsFiles } from '@flowline/grpc-auth';
import { createLogger } from '@flowline/telemetry';
import { type NodeConfig, nodePaths, parseNodeConfig } from '../../src/config';
import type { NodeContext } from '../../src/node-context';
import { type NodeState, emptyState } from '../../src/state';

/**
 * A NodeContext for unit tests of the node's parts: the default config for `stateDir`, the log
 * kept as parsed lines, and the state with a count of saves (saved copies, to see what was
 * recorded before a step).
 */
export function testContext(stateDir: string, config: Partial<NodeConfig> = {}) {
  const logs: Record<string, unknown>[] = [];
  const saved: NodeState[] = [];
  const ctx = {
    config: { ...parseNodeConfig({ stateDir }), ...config },
    paths: nodePaths(stateDir),
    log: createLogger('node', {
      write: (line) => logs.push(JSON.parse(line) as Record<string, unknown>),
    }),
    state: emptyState(),
    save: () => void saved.push(structuredClone(ctx.state)),
    securityEnv: (_files: (pki: LocalPki) => TlsFiles) => ({
      FLOWLINE_INSECURE: '1',
    }),
  } satisfies NodeContext;
  return { ctx, logs, saved };
}

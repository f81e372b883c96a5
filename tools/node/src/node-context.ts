import type { LocalPki, TlsFiles } from '@flowline/grpc-auth';
import type { Logger } from '@flowline/telemetry';
import type { NodeConfig, NodePaths } from './config';
import type { NodeState } from './state';

/**
 * What a part of the node works with: the config, the paths, the log, and the node's state,
 * which a part records each step in (and saves) before it takes the step, so that teardown can
 * undo it after a crash. NodeRuntime is the one implementation.
 */
export interface NodeContext {
  readonly config: NodeConfig;
  readonly paths: NodePaths;
  readonly log: Logger;
  /** The current state (NodeRuntime replaces the object on up and teardown: read it each time). */
  readonly state: NodeState;
  /** Writes the state file. */
  save(): void;
  /**
   * FLOWLINE_TLS_* for a process holding the certificate `files` issues from the node's CA, or
   * FLOWLINE_INSECURE when the node is configured so (then `files` is not called).
   */
  securityEnv(files: (pki: LocalPki) => TlsFiles): Record<string, string>;
}

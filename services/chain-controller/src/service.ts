import * as grpc from '@grpc/grpc-js';
import { chainV1, replyFrom } from '@flowline/proto';
import type { ChainController } from './controller';
import {
  ChainExistsError,
  ChainKeyConflictError,
  ChainNotFoundError,
  HopConfigConflictError,
  HopConfigError,
  InvalidChainError,
  LimitExceededError,
  StaleGenerationError,
  UnresolvedPortError,
} from './errors';
import { MAX_WATCH_STREAMS } from './limits';
import { WatchOutbox } from './watch-outbox';

export function toStatus(err: unknown): Partial<grpc.StatusObject> {
  if (err instanceof InvalidChainError)
    return { code: grpc.status.INVALID_ARGUMENT, details: err.message };
  if (err instanceof HopConfigError)
    return {
      code: grpc.status.FAILED_PRECONDITION,
      details: `${err.message} (the NF refused its hop config; nothing was changed)`,
    };
  if (err instanceof UnresolvedPortError)
    return { code: grpc.status.FAILED_PRECONDITION, details: err.message };
  if (
    err instanceof ChainExistsError ||
    err instanceof ChainKeyConflictError ||
    err instanceof HopConfigConflictError
  )
    return { code: grpc.status.ALREADY_EXISTS, details: err.message };
  if (err instanceof ChainNotFoundError)
    return { code: grpc.status.NOT_FOUND, details: err.message };
  if (err instanceof LimitExceededError)
    return { code: grpc.status.RESOURCE_EXHAUSTED, details: err.message };
  if (err instanceof StaleGenerationError)
    return { code: grpc.status.ABORTED, details: err.message };
  return {
    code: grpc.status.UNAVAILABLE,
    details: `the switch refused the change, nothing was changed: ${(err as Error).message}`,
  };
}

export interface ChainServiceOptions {
  /** WatchChains streams open at once (default MAX_WATCH_STREAMS). */
  maxWatchStreams?: number;
  /** Called with each WatchChains stream's outbox as it opens, and undefined as one closes (tests). */
  onWatch?: (outbox: WatchOutbox | undefined) => void;
}

/** flowline.chain.v1.ChainService over the controller. */
export function chainService(
  controller: ChainController,
  options: ChainServiceOptions = {},
): {
  definition: grpc.ServiceDefinition;
  implementation: grpc.UntypedServiceImplementation;
} {
  const maxWatchStreams = options.maxWatchStreams ?? MAX_WATCH_STREAMS;
  let open = 0;
  const handlers: chainV1.ChainServiceHandlers = {
    CreateChain: (call, cb) =>
      replyFrom(() => controller.create(call.request.name, call.request.spec), cb, toStatus),
    GetChain: (call, cb) =>
      replyFrom(
        async () =>
          (await controller.statsSnapshot()).find((c) => c.name === call.request.name) ??
          controller.get(call.request.name),
        cb,
        toStatus,
      ),
    ListChains: (_call, cb) =>
      replyFrom(async () => ({ chains: await controller.statsSnapshot() }), cb, toStatus),
    UpdateChain: (call, cb) =>
      replyFrom(
        () =>
          controller.update(
            call.request.name,
            call.request.spec,
            BigInt(call.request.generation || '0'),
          ),
        cb,
        toStatus,
      ),
    DeleteChain: (call, cb) =>
      replyFrom(async () => (await controller.delete(call.request.name), {}), cb, toStatus),
    WatchChains: (call) => {
      if (open >= maxWatchStreams) {
        call.emit(
          'error',
          toStatus(
            new LimitExceededError(
              'watch_streams',
              maxWatchStreams,
              `${open} WatchChains streams are open, the controller's limit; close one or retry later`,
            ),
          ),
        );
        return;
      }
      open++;
      const outbox = new WatchOutbox(call);
      const unsubscribe = controller.watch((type, chain) => outbox.push(type, chain));
      let done = false;
      const stop = (): void => {
        if (done) return;
        done = true;
        open--;
        unsubscribe();
        outbox.close();
        options.onWatch?.(undefined);
      };
      options.onWatch?.(outbox);
      call.on('cancelled', stop);
      call.on('close', stop);
      call.on('error', stop);
    },
  };
  return {
    definition: chainV1.loadChainV1().ChainService.service,
    implementation: handlers as unknown as grpc.UntypedServiceImplementation,
  };
}

import * as grpc from '@grpc/grpc-js';
import { chainV1, replyFrom } from '@flowline/proto';
import type { ChainController } from './controller';
import {
  ChainExistsError,
  ChainNotFoundError,
  HopConfigError,
  InvalidChainError,
  StaleGenerationError,
  UnresolvedPortError,
} from './errors';

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
  if (err instanceof ChainExistsError)
    return { code: grpc.status.ALREADY_EXISTS, details: err.message };
  if (err instanceof ChainNotFoundError)
    return { code: grpc.status.NOT_FOUND, details: err.message };
  if (err instanceof StaleGenerationError)
    return { code: grpc.status.ABORTED, details: err.message };
  return {
    code: grpc.status.UNAVAILABLE,
    details: `the switch refused the change, nothing was changed: ${(err as Error).message}`,
  };
}

/** flowline.chain.v1.ChainService over the controller. */
export function chainService(controller: ChainController): {
  definition: grpc.ServiceDefinition;
  implementation: grpc.UntypedServiceImplementation;
} {
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
      const stop = controller.watch((type, chain) => call.write({ type, chain }));
      call.on('cancelled', stop);
      call.on('close', stop);
    },
  };
  return {
    definition: chainV1.loadChainV1().ChainService.service,
    implementation: handlers as unknown as grpc.UntypedServiceImplementation,
  };
}

import * as grpc from '@grpc/grpc-js';
import type { GrpcServiceRegistration } from '@flowline/nf-runtime';
import { replyFrom, streamEvery, trafficGenV1 } from '@flowline/proto';
import { InvalidArgumentError } from './errors';
import { type RunView, resultsMessage } from './results';
import { type StartPlan, validateStart } from './validation';

/** What the service drives: the DPDK dataplane, or a stand-in in unit tests. */
export interface TrafficController {
  portNames(): string[];
  start(plan: StartPlan): { runId: number; flowCount: number };
  stop(): void;
  run(): RunView;
}

function toStatus(err: unknown): Partial<grpc.StatusObject> {
  const status = (code: grpc.status, details: string) => ({
    code,
    details,
    metadata: new grpc.Metadata(),
  });
  if (err instanceof InvalidArgumentError) return status(grpc.status.INVALID_ARGUMENT, err.message);
  return status(
    grpc.status.INTERNAL,
    `not started, the previous run is unchanged: ${(err as Error).message}`,
  );
}

/** flowline.trafficgen.v1.TrafficGenerator over a controller. */
export function trafficGenService(ctl: TrafficController): GrpcServiceRegistration {
  const results = () => resultsMessage(ctl.run());
  const handlers: trafficGenV1.TrafficGeneratorHandlers = {
    Start: (call, callback) =>
      replyFrom(
        () => {
          const plan = validateStart(call.request, ctl.portNames());
          return ctl.start(plan);
        },
        callback,
        toStatus,
      ),
    Stop: (_call, callback) =>
      replyFrom(
        () => {
          ctl.stop();
          return results();
        },
        callback,
        toStatus,
      ),
    GetResults: (_call, callback) => replyFrom(results, callback, toStatus),
    WatchResults: (call) => streamEvery(call, call.request.intervalMs, results),
  };
  return {
    name: 'flowline.trafficgen.v1.TrafficGenerator',
    definition: trafficGenV1.loadTrafficGenV1().TrafficGenerator.service,
    implementation: handlers as unknown as grpc.UntypedServiceImplementation,
    // Open to any authenticated peer; the rest only to the chain controller and the operator.
    readOnlyMethods: ['GetResults', 'WatchResults'],
  };
}

import * as grpc from '@grpc/grpc-js';
import {
  type Attributes,
  type Context,
  type Counter,
  type Histogram,
  type Meter,
  SpanKind,
  SpanStatusCode,
  type TextMapGetter,
  type TextMapSetter,
  type Tracer,
  context,
  propagation,
  trace,
} from '@opentelemetry/api';

// Metadata keys are lower case in grpc-js; traceparent/tracestate are too.
const metadataGetter: TextMapGetter<grpc.Metadata> = {
  keys: (carrier) => Object.keys(carrier.getMap()),
  get: (carrier, key) => {
    const values = carrier.get(key);
    return values.length === 0 ? undefined : values.map(String);
  },
};
const metadataSetter: TextMapSetter<grpc.Metadata> = {
  set: (carrier, key, value) => carrier.set(key, value),
};

/** "/flowline.nf.v1.NetworkFunction/GetInfo" → rpc.service and rpc.method, per OTel's RPC conventions. */
function rpcAttributes(path: string): Attributes {
  const [, service = '', method = ''] = path.split('/');
  return { 'rpc.system': 'grpc', 'rpc.service': service, 'rpc.method': method };
}

function statusName(code: number): string {
  return grpc.status[code] ?? String(code);
}

interface RpcInstruments {
  calls: Counter;
  duration: Histogram;
}

function instruments(meter: Meter, side: 'server' | 'client'): RpcInstruments {
  return {
    calls: meter.createCounter(`flowline_grpc_${side}_calls`, {
      description: `gRPC calls handled as ${side}, by method and status code`,
    }),
    duration: meter.createHistogram(`rpc.${side}.duration`, {
      description: `Duration of gRPC calls as ${side}`,
      unit: 'ms',
    }),
  };
}

/**
 * A grpc-js server interceptor that traces every call: it continues the caller's trace from the
 * traceparent metadata, runs the handler inside the server span (so its logs and child spans
 * join the trace), and ends the span with the gRPC status the handler sent.
 */
export function createServerTracingInterceptor(
  tracer: Tracer,
  meter: Meter,
): grpc.ServerInterceptor {
  const metrics = instruments(meter, 'server');
  return (methodDescriptor, call) => {
    const attributes = rpcAttributes(methodDescriptor.path);
    const started = performance.now();
    let spanContext: Context = context.active();
    let span: ReturnType<Tracer['startSpan']> | undefined;
    return new grpc.ServerInterceptingCall(call, {
      start: (next) => {
        next({
          onReceiveMetadata: (metadata, nextMetadata) => {
            const parent = propagation.extract(context.active(), metadata, metadataGetter);
            span = tracer.startSpan(
              methodDescriptor.path.slice(1),
              { kind: SpanKind.SERVER, attributes },
              parent,
            );
            spanContext = trace.setSpan(parent, span);
            context.with(spanContext, () => nextMetadata(metadata));
          },
          onReceiveMessage: (message, nextMessage) => {
            context.with(spanContext, () => nextMessage(message));
          },
          onReceiveHalfClose: (nextHalfClose) => {
            context.with(spanContext, () => nextHalfClose());
          },
          onCancel: () => {
            span?.setStatus({ code: SpanStatusCode.ERROR, message: 'cancelled by the client' });
            span?.end();
            span = undefined;
          },
        });
      },
      sendStatus: (status, nextStatus) => {
        const code = status.code ?? grpc.status.OK;
        const labels = { ...attributes, 'rpc.grpc.status_code': statusName(code) };
        metrics.calls.add(1, labels);
        metrics.duration.record(performance.now() - started, labels);
        if (span) {
          span.setAttribute('rpc.grpc.status_code', code);
          if (code !== grpc.status.OK) {
            span.setStatus({
              code: SpanStatusCode.ERROR,
              message: status.details ?? statusName(code),
            });
          }
          span.end();
          span = undefined;
        }
        nextStatus(status);
      },
    });
  };
}

/**
 * A grpc-js client interceptor that opens a client span per call and sends its context in the
 * traceparent metadata, so the server's span becomes its child.
 */
export function createClientTracingInterceptor(tracer: Tracer, meter: Meter): grpc.Interceptor {
  const metrics = instruments(meter, 'client');
  return (options, nextCall) => {
    const attributes = rpcAttributes(options.method_definition.path);
    const span = tracer.startSpan(options.method_definition.path.slice(1), {
      kind: SpanKind.CLIENT,
      attributes,
    });
    const started = performance.now();
    const callContext = trace.setSpan(context.active(), span);
    return new grpc.InterceptingCall(nextCall(options), {
      start: (metadata, listener, next) => {
        propagation.inject(callContext, metadata, metadataSetter);
        next(metadata, {
          onReceiveStatus: (status, nextStatus) => {
            const labels = { ...attributes, 'rpc.grpc.status_code': statusName(status.code) };
            metrics.calls.add(1, labels);
            metrics.duration.record(performance.now() - started, labels);
            span.setAttribute('rpc.grpc.status_code', status.code);
            if (status.code !== grpc.status.OK) {
              span.setStatus({ code: SpanStatusCode.ERROR, message: status.details });
            }
            span.end();
            nextStatus(status);
          },
        });
      },
    });
  };
}

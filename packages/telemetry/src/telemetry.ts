import type * as grpc from '@grpc/grpc-js';
import { type Meter, type Tracer, context, metrics, propagation, trace } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  MeterProvider,
  type MetricReader,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import { BatchSpanProcessor, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createClientTracingInterceptor, createServerTracingInterceptor } from './grpc-tracing';
import { type LogLevel, type Logger, createLogger } from './logger';

export interface TelemetryOptions {
  /** The component's name: OTel service.name and the logger's component field. */
  component: string;
  version?: string;
  /**
   * Port of the Prometheus endpoint (GET /metrics). Default: FLOWLINE_METRICS_PORT, else 9464.
   * 0 picks a free port (read it back from metricsPort); false turns the endpoint off.
   */
  metricsPort?: number | false;
  /** Address the Prometheus endpoint binds; default FLOWLINE_METRICS_HOST, else 0.0.0.0. */
  metricsHost?: string;
  /** OTLP/HTTP endpoint; default the standard OTEL_EXPORTER_OTLP_ENDPOINT. Unset: no OTLP. */
  otlpEndpoint?: string;
  /** Interval of OTLP metric export, ms. */
  otlpMetricIntervalMs?: number;
  logLevel?: LogLevel;
  /** Extra span processors, e.g. an in-memory exporter in tests. */
  spanProcessors?: SpanProcessor[];
  /** Extra resource attributes (k8s.pod.name, ...). */
  attributes?: Record<string, string>;
}

export interface Telemetry {
  readonly logger: Logger;
  readonly meter: Meter;
  readonly tracer: Tracer;
  /** The bound Prometheus port, or undefined when the endpoint is off. */
  readonly metricsPort: number | undefined;
  /** e.g. http://127.0.0.1:9464/metrics */
  readonly metricsUrl: string | undefined;
  /** Whether OTLP export is on. */
  readonly otlp: boolean;
  /** Pass to `new grpc.Server({ interceptors: [...] })`: traces every call served. */
  readonly grpcServerInterceptor: grpc.ServerInterceptor;
  /** Pass to a client's options `{ interceptors: [...] }`: traces every call made. */
  readonly grpcClientInterceptor: grpc.Interceptor;
  /** Flushes OTLP, closes the metrics endpoint and releases the global providers. */
  shutdown(): Promise<void>;
}

export class TelemetrySetupError extends Error {
  constructor(
    message: string,
    readonly setting: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'TelemetrySetupError';
  }
}

function resolveMetricsPort(option: number | false | undefined): number | false {
  if (option !== undefined) return option;
  const fromEnv = process.env.FLOWLINE_METRICS_PORT;
  if (fromEnv === undefined || fromEnv === '') return 9464;
  const port = Number(fromEnv);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new TelemetrySetupError(
      `FLOWLINE_METRICS_PORT="${fromEnv}" is not a port number (0-65535)`,
      'FLOWLINE_METRICS_PORT',
    );
  }
  return port;
}

async function listen(server: Server, port: number, host: string): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  return (server.address() as AddressInfo).port;
}

/**
 * Sets up OpenTelemetry for this process in one call: a meter whose instruments are served as
 * Prometheus text on the metrics port and, when an OTLP endpoint is configured, pushed there
 * too; a tracer (OTLP when configured) with W3C trace-context propagation; gRPC interceptors
 * that trace calls; and a JSON logger that names the component.
 */
export async function setupTelemetry(options: TelemetryOptions): Promise<Telemetry> {
  const logger = createLogger(
    options.component,
    options.logLevel ? { level: options.logLevel } : {},
  );
  const resource = resourceFromAttributes({
    [ATTR_SERVICE_NAME]: options.component,
    [ATTR_SERVICE_VERSION]: options.version ?? '0.1.0',
    ...options.attributes,
  });
  const otlpEndpoint = options.otlpEndpoint ?? process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
  const otlp = otlpEndpoint !== undefined && otlpEndpoint !== '';
  const otlpBase = otlp ? otlpEndpoint.replace(/\/+$/, '') : '';

  // Metrics: Prometheus pull, plus OTLP push when configured.
  const readers: MetricReader[] = [];
  const metricsPort = resolveMetricsPort(options.metricsPort);
  let prometheus: PrometheusExporter | undefined;
  if (metricsPort !== false) {
    // We serve the exporter's handler ourselves so that port 0 works and a bind error is ours.
    prometheus = new PrometheusExporter({ preventServerStart: true, withoutScopeInfo: true });
    readers.push(prometheus);
  }
  if (otlp) {
    readers.push(
      new PeriodicExportingMetricReader({
        exporter: new OTLPMetricExporter({ url: `${otlpBase}/v1/metrics` }),
        exportIntervalMillis: options.otlpMetricIntervalMs ?? 15_000,
      }),
    );
  }
  const meterProvider = new MeterProvider({ resource, readers });

  const spanProcessors: SpanProcessor[] = [...(options.spanProcessors ?? [])];
  if (otlp) {
    spanProcessors.push(
      new BatchSpanProcessor(new OTLPTraceExporter({ url: `${otlpBase}/v1/traces` })),
    );
  }
  const tracerProvider = new NodeTracerProvider({ resource, spanProcessors });

  // Globals let libraries that use @opentelemetry/api alone report into this set-up. A second
  // set-up in one process (tests) keeps its own providers; its meter and tracer still work.
  metrics.setGlobalMeterProvider(meterProvider);
  tracerProvider.register({ propagator: new W3CTraceContextPropagator() });
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());

  const meter = meterProvider.getMeter(options.component);
  const tracer = tracerProvider.getTracer(options.component);

  let httpServer: Server | undefined;
  let boundPort: number | undefined;
  const host = options.metricsHost ?? process.env.FLOWLINE_METRICS_HOST ?? '0.0.0.0';
  if (prometheus && metricsPort !== false) {
    const exporter = prometheus;
    httpServer = createServer((req, res) => {
      if (req.method === 'GET' && (req.url === '/metrics' || req.url?.startsWith('/metrics?'))) {
        exporter.getMetricsRequestHandler(req, res);
        return;
      }
      res.statusCode = 404;
      res.end('not found: metrics are served on /metrics\n');
    });
    try {
      boundPort = await listen(httpServer, metricsPort, host);
    } catch (err) {
      await meterProvider.shutdown().catch(() => undefined);
      await tracerProvider.shutdown().catch(() => undefined);
      throw new TelemetrySetupError(
        `cannot serve metrics on ${host}:${metricsPort}: ${(err as Error).message}; ` +
          'choose another port with FLOWLINE_METRICS_PORT',
        'metricsPort',
        { cause: err },
      );
    }
  }
  const urlHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  const metricsUrl = boundPort === undefined ? undefined : `http://${urlHost}:${boundPort}/metrics`;
  logger.debug('telemetry ready', { metricsUrl, otlp: otlp ? otlpBase : false });

  let stopped = false;
  return {
    logger,
    meter,
    tracer,
    metricsPort: boundPort,
    metricsUrl,
    otlp,
    grpcServerInterceptor: createServerTracingInterceptor(tracer, meter),
    grpcClientInterceptor: createClientTracingInterceptor(tracer, meter),
    async shutdown() {
      if (stopped) return;
      stopped = true;
      if (httpServer) {
        const server = httpServer;
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        });
      }
      await Promise.allSettled([tracerProvider.shutdown(), meterProvider.shutdown()]);
      if (metrics.getMeterProvider() === meterProvider) metrics.disable();
      trace.disable();
      context.disable();
      propagation.disable();
    },
  };
}

import * as grpc from '@grpc/grpc-js';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { createServer, type IncomingMessage } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type Telemetry,
  TelemetrySetupError,
  createLogger,
  parseLogLevel,
  setupTelemetry,
} from './index';

const started: Telemetry[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((t) => t.shutdown()));
});

async function start(options: Parameters<typeof setupTelemetry>[0]): Promise<Telemetry> {
  const t = await setupTelemetry(options);
  started.push(t);
  return t;
}

describe('Prometheus endpoint', () => {
  it('serves a counter the process incremented', async () => {
    const t = await start({
      component: 'telemetry-test',
      metricsPort: 0,
      metricsHost: '127.0.0.1',
    });
    const counter = t.meter.createCounter('flowline_port_rx_packets', {
      description: 'packets received',
    });
    counter.add(41, { nf: 'fw-0', port: 'net1' });
    counter.add(1, { nf: 'fw-0', port: 'net1' });
    expect(t.metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    const res = await fetch(t.metricsUrl!);
    expect(res.status).toBe(200);
    const body = await res.text();
    expect(body).toMatch(/# HELP flowline_port_rx_packets_total packets received/);
    expect(body).toMatch(/flowline_port_rx_packets_total\{nf="fw-0",port="net1"\} 42/);
  });

  it('answers 404 off /metrics', async () => {
    const t = await start({
      component: 'telemetry-test',
      metricsPort: 0,
      metricsHost: '127.0.0.1',
    });
    const res = await fetch(t.metricsUrl!.replace('/metrics', '/other'));
    expect(res.status).toBe(404);
  });

  it('names the port when it cannot bind', async () => {
    const first = await start({ component: 'a', metricsPort: 0, metricsHost: '127.0.0.1' });
    const err = await setupTelemetry({
      component: 'b',
      metricsPort: first.metricsPort!,
      metricsHost: '127.0.0.1',
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TelemetrySetupError);
    expect((err as Error).message).toContain(`127.0.0.1:${first.metricsPort}`);
  });

  it('rejects a bad FLOWLINE_METRICS_PORT, naming it', async () => {
    process.env.FLOWLINE_METRICS_PORT = 'ninety';
    try {
      await expect(setupTelemetry({ component: 'x' })).rejects.toThrow(
        /FLOWLINE_METRICS_PORT="ninety"/,
      );
    } finally {
      delete process.env.FLOWLINE_METRICS_PORT;
    }
  });
});

describe('OTLP export', () => {
  it('pushes metrics and traces to OTEL_EXPORTER_OTLP_ENDPOINT', async () => {
    const received: { path: string; body: Buffer }[] = [];
    const collector = createServer((req: IncomingMessage, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        received.push({ path: req.url ?? '', body: Buffer.concat(chunks) });
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((r) => collector.listen(0, '127.0.0.1', r));
    const endpoint = `http://127.0.0.1:${(collector.address() as AddressInfo).port}`;
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = endpoint;
    try {
      const t = await setupTelemetry({ component: 'otlp-test', metricsPort: false });
      expect(t.otlp).toBe(true);
      t.meter.createCounter('flowline_otlp_probe').add(7);
      t.tracer.startSpan('probe-span').end();
      await t.shutdown(); // flushes both signals
    } finally {
      delete process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
      collector.close();
    }
    const paths = received.map((r) => r.path);
    expect(paths).toContain('/v1/metrics');
    expect(paths).toContain('/v1/traces');
    const metricsBody = received.find((r) => r.path === '/v1/metrics')!.body;
    expect(metricsBody.includes(Buffer.from('flowline_otlp_probe'))).toBe(true);
  });
});

describe('gRPC tracing', () => {
  it('traces a call on both sides in one trace and counts it', async () => {
    const spans = new InMemorySpanExporter();
    const t = await start({
      component: 'grpc-trace-test',
      metricsPort: 0,
      metricsHost: '127.0.0.1',
      spanProcessors: [new SimpleSpanProcessor(spans)],
    });
    const dir = mkdtempSync(join(tmpdir(), 'flowline-tel-'));
    const address = `unix://${join(dir, 's.sock')}`;
    // A hand-written service definition keeps this package free of packages/proto.
    const echo: grpc.ServiceDefinition = {
      Echo: {
        path: '/test.Echo/Echo',
        requestStream: false,
        responseStream: false,
        requestSerialize: (v: Buffer) => v,
        requestDeserialize: (b: Buffer) => b,
        responseSerialize: (v: Buffer) => v,
        responseDeserialize: (b: Buffer) => b,
      },
      Fail: {
        path: '/test.Echo/Fail',
        requestStream: false,
        responseStream: false,
        requestSerialize: (v: Buffer) => v,
        requestDeserialize: (b: Buffer) => b,
        responseSerialize: (v: Buffer) => v,
        responseDeserialize: (b: Buffer) => b,
      },
    };
    const logLines: string[] = [];
    const log = createLogger('grpc-trace-test', { write: (l) => logLines.push(l) });
    const server = new grpc.Server({ interceptors: [t.grpcServerInterceptor] });
    server.addService(echo, {
      Echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
        log.info('handling echo');
        cb(null, call.request);
      },
      Fail: (_call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) =>
        cb({ code: grpc.status.INVALID_ARGUMENT, details: 'field x is bad' }),
    });
    await new Promise<void>((res, rej) =>
      server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (e) =>
        e ? rej(e) : res(),
      ),
    );
    const Client = grpc.makeGenericClientConstructor(echo, 'Echo');
    const client = new Client(address, grpc.credentials.createInsecure(), {
      interceptors: [t.grpcClientInterceptor],
    }) as grpc.Client &
      Record<string, (req: Buffer, cb: (e: grpc.ServiceError | null, r?: Buffer) => void) => void>;
    try {
      const reply = await new Promise<Buffer>((res, rej) =>
        client.Echo!(Buffer.from('hi'), (e, r) => (e || !r ? rej(e) : res(r))),
      );
      expect(reply.toString()).toBe('hi');
      const failure = await new Promise<grpc.ServiceError>((res) =>
        client.Fail!(Buffer.from(''), (e) => res(e!)),
      );
      expect(failure.code).toBe(grpc.status.INVALID_ARGUMENT);
    } finally {
      client.close();
      await new Promise<void>((r) => server.tryShutdown(() => r()));
      rmSync(dir, { recursive: true, force: true });
    }

    const finished = spans.getFinishedSpans();
    const serverSpan = finished.find((s) => s.name === 'test.Echo/Echo' && s.kind === 1);
    const clientSpan = finished.find((s) => s.name === 'test.Echo/Echo' && s.kind === 2);
    expect(serverSpan, 'server span').toBeDefined();
    expect(clientSpan, 'client span').toBeDefined();
    expect(serverSpan!.spanContext().traceId).toBe(clientSpan!.spanContext().traceId);
    expect(serverSpan!.parentSpanContext?.spanId).toBe(clientSpan!.spanContext().spanId);
    const failSpan = finished.find((s) => s.name === 'test.Echo/Fail' && s.kind === 1);
    expect(failSpan!.status).toMatchObject({ code: 2, message: 'field x is bad' });
    // The handler's log line carries the server span's trace id.
    const line = JSON.parse(logLines[0]!) as Record<string, string>;
    expect(line.trace_id).toBe(serverSpan!.spanContext().traceId);

    const body = await (await fetch(t.metricsUrl!)).text();
    expect(body).toMatch(
      /flowline_grpc_server_calls_total\{[^}]*rpc_method="Echo"[^}]*rpc_grpc_status_code="OK"[^}]*\} 1/,
    );
    expect(body).toMatch(
      /flowline_grpc_server_calls_total\{[^}]*rpc_grpc_status_code="INVALID_ARGUMENT"[^}]*\} 1/,
    );
  });
});

describe('logger', () => {
  it('writes one JSON object per line with component, level and fields', () => {
    const lines: string[] = [];
    const log = createLogger('cni-plugin', { level: 'info', write: (l) => lines.push(l) });
    log.debug('hidden');
    log.child({ pod: 'ns/p' }).warn('slow', { ms: 12, err: new Error('boom') });
    expect(lines).toHaveLength(1);
    const rec = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(rec).toMatchObject({
      level: 'warn',
      component: 'cni-plugin',
      msg: 'slow',
      pod: 'ns/p',
      ms: 12,
    });
    expect(rec.err).toMatchObject({ name: 'Error', message: 'boom' });
    expect(typeof rec.time).toBe('string');
  });

  it('keeps its own keys whatever the fields are called, and writes errors whole, cause and all', () => {
    const lines: string[] = [];
    const log = createLogger('t', { level: 'info', write: (l) => lines.push(l) });
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    log.error('failed', {
      level: 'debug',
      msg: 'forged',
      component: 'other',
      err: new Error('outer', { cause: new Error('inner', { cause: { code: 'EIO' } }) }),
      wrapped: { e: new Error('nested') },
      cyclic,
      big: 2n ** 64n,
    });
    const rec = JSON.parse(lines[0]!) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    expect(rec).toMatchObject({ level: 'error', msg: 'failed', component: 't' });
    expect(rec).toMatchObject({
      field_level: 'debug',
      field_msg: 'forged',
      field_component: 'other',
    });
    expect(rec.err.cause).toMatchObject({
      name: 'Error',
      message: 'inner',
      cause: { code: 'EIO' },
    });
    expect(rec.wrapped.e).toMatchObject({ name: 'Error', message: 'nested' });
    expect(rec.cyclic).toEqual({ a: 1, self: '[Circular]' });
    expect(rec.big).toBe('18446744073709551616');
  });

  it('rejects an unknown level, naming the variable', () => {
    expect(() => parseLogLevel('loud')).toThrow(/FLOWLINE_LOG_LEVEL="loud"/);
    expect(parseLogLevel('WARN')).toBe('warn');
  });
});

import { createLogger, setupTelemetry, type Telemetry } from '@flowline/telemetry';
import { CniDaemon, CniDaemonError, DEFAULT_DAEMON_SOCKET, type ServedInvocation } from './daemon';

const USAGE = 'usage: flowline-cni daemon [--socket PATH] [--metrics-port PORT|off]';

/**
 * `flowline-cni daemon`: serves the native executable's invocations until SIGTERM or SIGINT,
 * with Prometheus metrics (contract 6, docs/architecture.md#metrics: text on the process's metrics port). Bundled apart from
 * the exec path (dist/flowline-cni-daemon.js): OpenTelemetry is too big to load per exec.
 */
export async function runDaemon(argv: readonly string[]): Promise<void> {
  let socketPath = process.env.FLOWLINE_CNI_SOCKET || DEFAULT_DAEMON_SOCKET;
  let metrics = process.env.FLOWLINE_METRICS_PORT || '9466';
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--socket' && argv[i + 1] !== undefined) socketPath = argv[++i]!;
    else if (a === '--metrics-port' && argv[i + 1] !== undefined) metrics = argv[++i]!;
    else if (a === '--help' || a === '-h') {
      process.stdout.write(
        `${USAGE}\n` +
          `Serves the flowline CNI executable's invocations on PATH (default $FLOWLINE_CNI_SOCKET, else ${DEFAULT_DAEMON_SOCKET}),\n` +
          'metrics on PORT (default $FLOWLINE_METRICS_PORT, else 9466; "off" for none).\n',
      );
      return;
    } else throw new CniDaemonError(`unknown argument ${a}; ${USAGE}`, socketPath);
  }
  const metricsPort = metrics === 'off' ? false : Number(metrics);
  if (
    metricsPort !== false &&
    !(Number.isInteger(metricsPort) && metricsPort >= 0 && metricsPort < 65536)
  )
    throw new CniDaemonError(`--metrics-port: "${metrics}" is not a port or "off"`, socketPath);
  // The socket first: a second daemon is refused for that, before it takes a metrics port.
  const served: { observe?: (s: ServedInvocation) => void } = {};
  const daemon = await CniDaemon.listen({
    socketPath,
    log: createLogger('cni-daemon'),
    observe: (s) => served.observe?.(s),
  });
  let telemetry: Telemetry;
  try {
    telemetry = await setupTelemetry({ component: 'cni-daemon', metricsPort });
  } catch (err) {
    await daemon.stop();
    throw err;
  }
  const log = telemetry.logger;
  const requests = telemetry.meter.createCounter('flowline_cni_requests', {
    description:
      'CNI invocations served by the daemon, by command and result (ok or the CNI error code)',
  });
  const duration = telemetry.meter.createHistogram('flowline_cni_request_duration_seconds', {
    description: 'Time the daemon took to serve a CNI invocation, by command',
    unit: 's',
    advice: {
      explicitBucketBoundaries: [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    },
  });
  served.observe = ({ command, exitCode, errorCode, seconds }) => {
    requests.add(1, { command, result: exitCode === 0 ? 'ok' : String(errorCode ?? 'unknown') });
    duration.record(seconds, { command });
  };
  if (telemetry.metricsPort !== undefined) log.info('metrics', { port: telemetry.metricsPort });
  await new Promise<void>((resolve) => {
    const onSignal = (signal: NodeJS.Signals): void => {
      log.info('signal', { signal });
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      resolve();
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
  await daemon.stop();
  await telemetry.shutdown();
}

export {
  setupTelemetry,
  TelemetrySetupError,
  type Telemetry,
  type TelemetryOptions,
} from './telemetry';
export {
  createLogger,
  parseLogLevel,
  type LogFields,
  type LogLevel,
  type Logger,
  type LoggerOptions,
} from './logger';
export { createClientTracingInterceptor, createServerTracingInterceptor } from './grpc-tracing';

import { trace } from '@opentelemetry/api';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const LEVEL_RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export type LogFields = Record<string, unknown>;

export interface Logger {
  readonly component: string;
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger whose every line also carries these fields (e.g. { port: 'net1' }). */
  child(fields: LogFields): Logger;
}

export interface LoggerOptions {
  /** Minimum level written; default from FLOWLINE_LOG_LEVEL, else info. */
  level?: LogLevel;
  /** Where lines go; default stderr so stdout stays free for program output (CNI, CLI JSON). */
  write?: (line: string) => void;
}

export function parseLogLevel(value: string | undefined, fallback: LogLevel = 'info'): LogLevel {
  if (value === undefined || value === '') return fallback;
  const lower = value.toLowerCase();
  if (lower in LEVEL_RANK) return lower as LogLevel;
  throw new Error(`FLOWLINE_LOG_LEVEL="${value}" is not one of debug, info, warn, error`);
}

/** How deep toJsonSafe follows nested objects before writing "[…]". */
const MAX_DEPTH = 8;

/**
 * A field value as JSON can carry it. Errors do not serialize with JSON.stringify: each, however
 * deep, keeps its name, message, own fields, cause (a non-enumerable property) and stack. A
 * cycle is written "[Circular]" rather than making JSON.stringify throw in the caller.
 */
function toJsonSafe(value: unknown, depth = 0, ancestors = new WeakSet<object>()): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (value === null || typeof value !== 'object') return value;
  if (ancestors.has(value)) return '[Circular]';
  if (depth >= MAX_DEPTH) return '[…]';
  const withToJson = value as { toJSON?: () => unknown };
  if (!(value instanceof Error) && typeof withToJson.toJSON === 'function')
    return toJsonSafe(withToJson.toJSON(), depth, ancestors);
  ancestors.add(value);
  try {
    if (Array.isArray(value)) return value.map((v) => toJsonSafe(v, depth + 1, ancestors));
    const out: Record<string, unknown> = {};
    if (value instanceof Error) {
      out.name = value.name;
      out.message = value.message;
    }
    for (const [k, v] of Object.entries(value)) out[k] = toJsonSafe(v, depth + 1, ancestors);
    if (value instanceof Error) {
      if (value.cause !== undefined) out.cause = toJsonSafe(value.cause, depth + 1, ancestors);
      if (value.stack) out.stack = value.stack;
    }
    return out;
  } finally {
    ancestors.delete(value);
  }
}

/** The keys every record has: a field of the same name is written as field_<name>, not over it. */
const RESERVED = new Set(['time', 'level', 'component', 'msg', 'trace_id', 'span_id']);

/**
 * A structured logger: one JSON object per line with time, level, component and message,
 * plus trace_id and span_id when a span is active, so logs join up with traces.
 */
export function createLogger(
  component: string,
  options: LoggerOptions = {},
  bound: LogFields = {},
): Logger {
  const minRank = LEVEL_RANK[options.level ?? parseLogLevel(process.env.FLOWLINE_LOG_LEVEL)];
  const write = options.write ?? ((line: string) => process.stderr.write(line + '\n'));
  const emit = (level: LogLevel, msg: string, fields?: LogFields): void => {
    if (LEVEL_RANK[level] < minRank) return;
    const record: Record<string, unknown> = {
      time: new Date().toISOString(),
      level,
      component,
      msg,
    };
    const spanContext = trace.getActiveSpan()?.spanContext();
    if (spanContext) {
      record.trace_id = spanContext.traceId;
      record.span_id = spanContext.spanId;
    }
    for (const [k, v] of Object.entries({ ...bound, ...fields }))
      record[RESERVED.has(k) ? `field_${k}` : k] = toJsonSafe(v);
    write(JSON.stringify(record));
  };
  return {
    component,
    debug: (msg, fields) => emit('debug', msg, fields),
    info: (msg, fields) => emit('info', msg, fields),
    warn: (msg, fields) => emit('warn', msg, fields),
    error: (msg, fields) => emit('error', msg, fields),
    child: (fields) => createLogger(component, options, { ...bound, ...fields }),
  };
}

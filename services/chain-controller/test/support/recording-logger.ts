import type { LogFields, Logger } from '@flowline/telemetry';

export interface LogLine extends LogFields {
  level: string;
  msg: string;
}

/** A Logger keeping its lines (with the child fields) for a test to assert on. */
export function recordingLogger(
  lines: LogLine[] = [],
  bound: LogFields = {},
): Logger & {
  lines: LogLine[];
} {
  const emit = (level: string) => (msg: string, fields?: LogFields) =>
    void lines.push({ ...bound, ...fields, level, msg });
  return {
    component: 'chain-controller',
    lines,
    debug: emit('debug'),
    info: emit('info'),
    warn: emit('warn'),
    error: emit('error'),
    child: (fields) => recordingLogger(lines, { ...bound, ...fields }),
  };
}

import winston from 'winston';

// JSON lines. Secrets must never reach a log: any field whose name looks like
// it holds one is replaced, at any depth, before the line is written.
const SECRET_FIELD = /(secret|password|token|authorization|api[-_]?key|cookie|^key$|signature)/i;

export function redact(value: unknown, depth = 0): unknown {
  if (depth > 6 || value === null || typeof value !== 'object') return value;
  if (value instanceof Error) return { name: value.name, message: value.message };
  if (Array.isArray(value)) return value.map((item) => redact(item, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [field, inner] of Object.entries(value)) {
    out[field] = SECRET_FIELD.test(field) && inner != null ? '[redacted]' : redact(inner, depth + 1);
  }
  return out;
}

const redactFormat = winston.format((info) => {
  for (const field of Object.keys(info)) {
    const value = info[field];
    if (SECRET_FIELD.test(field) && value != null) info[field] = '[redacted]';
    else if (value && typeof value === 'object') info[field] = redact(value);
  }
  return info;
});

export type Logger = winston.Logger;

export function createLogger(opts: { level: string; service: string; silent?: boolean; stream?: NodeJS.WritableStream }): Logger {
  const transport = opts.stream
    ? new winston.transports.Stream({ stream: opts.stream })
    : new winston.transports.Console({ stderrLevels: ['error'] });
  return winston.createLogger({
    level: opts.level,
    silent: opts.silent,
    defaultMeta: { service: opts.service },
    format: winston.format.combine(redactFormat(), winston.format.timestamp(), winston.format.json()),
    transports: [transport],
  });
}

/**
 * A warn line for errors that repeat while a dependency is down (a Redis
 * connection retrying, say): the first one at once, then at most one per
 * `everyMs`, with how many were left out. Nothing is swallowed silently, and
 * an outage does not flood the log.
 */
export function throttledWarn(logger: Logger, message: string, everyMs = 5_000): (err: Error) => void {
  let last = 0;
  let skipped = 0;
  return (err) => {
    const now = Date.now();
    if (now - last < everyMs) {
      skipped += 1;
      return;
    }
    logger.warn(message, { err: err.message, ...(skipped ? { repeated: skipped } : {}) });
    last = now;
    skipped = 0;
  };
}

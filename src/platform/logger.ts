import pino from 'pino';

/** JSON logs, one line per event, with the process's role on every line. */
export function createLogger(role: string, level = process.env.LOG_LEVEL ?? 'info') {
  return pino({ name: `payrecon-${role}`, level });
}

export type Logger = ReturnType<typeof createLogger>;

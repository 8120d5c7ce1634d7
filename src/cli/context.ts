import type { Client } from '@temporalio/client';
import type { ChannelModel } from 'amqplib';
import { InvalidArgumentError } from 'commander';
import ms from 'ms';
import type { Database, Sql } from '../db/client';
import { type Config, ConfigError, loadConfig } from '../platform/config';
import { redactUrl } from '../platform/redact';
import { createPaymentGateways, type PaymentGateways } from '../provider/select';

/**
 * What every command shares: exit codes, errors that carry one, the configuration, lazily opened
 * connections to the services (each named in the error when it is down), and argument parsers.
 *
 * The client libraries (Temporal, drizzle and postgres, amqplib) are imported when a command first asks
 * for a connection, never at start-up: `payrecon --help` must not load them (test/build.test.ts).
 */

/** 0: done. 1: the operation failed (a service is down, no such order, ...). 2: bad usage or input. */
export const EXIT = { OK: 0, FAILURE: 1, USAGE: 2 } as const;

/** An error whose message is meant for the operator as is, with the exit code to end with. */
export class CliError extends Error {
  override name = 'CliError';
  constructor(
    message: string,
    readonly exitCode: number = EXIT.FAILURE,
  ) {
    super(message);
  }
}

/** Bad arguments that commander cannot check by itself (a combination, a missing flag): exit 2. */
export class UsageError extends CliError {
  override name = 'UsageError';
  constructor(message: string) {
    super(message, EXIT.USAGE);
  }
}

export interface Writer {
  write(chunk: string): unknown;
}

export interface CliIo {
  env: NodeJS.ProcessEnv;
  stdout: Writer;
  stderr: Writer;
}

/** One run of the CLI: its output streams, its configuration and the connections it opened. */
export class CliContext {
  private config: Config | undefined;
  private database: Promise<{ db: Database; sql: Sql }> | undefined;
  private temporalClient: Promise<Client> | undefined;
  private amqpConnection: Promise<ChannelModel> | undefined;
  private gateways: PaymentGateways | undefined;
  private readonly closers: (() => Promise<unknown>)[] = [];

  constructor(readonly io: CliIo) {}

  /** The environment's configuration; a bad value is a usage error naming the variable. */
  getConfig(): Config {
    if (!this.config) {
      try {
        this.config = loadConfig(this.io.env);
      } catch (error) {
        if (error instanceof ConfigError) throw new CliError(error.message, EXIT.USAGE);
        throw error;
      }
    }
    return this.config;
  }

  /** A small PostgreSQL pool, checked with `select 1` so a database that is down is named at once. */
  db(): Promise<{ db: Database; sql: Sql }> {
    this.database ??= (async () => {
      const config = this.getConfig();
      const { assertDatabaseReachable, createDatabase } = await import('../db/client');
      const database = createDatabase(config.DATABASE_URL, { max: 2 });
      this.closers.push(() => database.close());
      try {
        await assertDatabaseReachable(database.sql, config.DATABASE_URL);
      } catch (error) {
        throw new CliError((error as Error).message);
      }
      return { db: database.db, sql: database.sql };
    })();
    return this.database;
  }

  temporal(): Promise<Client> {
    this.temporalClient ??= (async () => {
      try {
        const { connectTemporal } = await import('../platform/temporal');
        const client = await connectTemporal(this.getConfig());
        this.closers.push(() => client.connection.close());
        return client;
      } catch (error) {
        throw new CliError((error as Error).message);
      }
    })();
    return this.temporalClient;
  }

  /** The payment providers, through the same gateways the worker uses (one per PAYMENT_PROVIDERS). */
  provider(): PaymentGateways {
    this.gateways ??= createPaymentGateways(this.getConfig(), this.io.env);
    return this.gateways;
  }

  /** A plain amqplib connection (no reconnects: an operator command fails fast and says why). */
  amqp(): Promise<ChannelModel> {
    this.amqpConnection ??= (async () => {
      const config = this.getConfig();
      const { connectAny } = await import('../mq/connect');
      let connection: ChannelModel;
      try {
        // Every node of the list in turn: a command works while one node of a cluster is down.
        connection = await connectAny(config.AMQP_URL, { timeoutMs: 5_000 });
      } catch (error) {
        throw new CliError(
          `RabbitMQ is not reachable at ${redactUrl(config.AMQP_URL)}: ${describeError(error)}`,
        );
      }
      // An 'error' event without a listener would crash the process; close() reports failures.
      connection.on('error', () => {});
      this.closers.push(() => connection.close());
      return connection;
    })();
    return this.amqpConnection;
  }

  out(text = ''): void {
    this.io.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
  }

  /** Notes for a human that must not end up in piped (e.g. --json) output. */
  warn(text: string): void {
    this.io.stderr.write(`payrecon: ${text}\n`);
  }

  json(value: unknown): void {
    this.io.stdout.write(`${JSON.stringify(value, jsonReplacer, 2)}\n`);
  }

  /** Closes every connection this run opened, newest first; a failing close does not hide the others. */
  async close(): Promise<void> {
    for (const close of this.closers.reverse()) {
      await close().catch(() => {});
    }
    this.closers.length = 0;
  }
}

/** Dates as ISO strings, bigints as numbers when safe. */
function jsonReplacer(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return Number.isSafeInteger(Number(value)) ? Number(value) : String(value);
  return value;
}

export function describeError(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) {
    return error.errors.map((inner) => describeError(inner)).join('; ');
  }
  if (error instanceof Error) {
    const code = (error as NodeJS.ErrnoException).code;
    const message = error.message || String(code ?? '') || error.name;
    // Wrappers such as Temporal's ServiceError keep the informative part in `cause`.
    const { cause } = error as { cause?: unknown };
    if (cause instanceof Error && cause.message && !message.includes(cause.message)) {
      return `${message}: ${describeError(cause)}`;
    }
    return message;
  }
  return String(error);
}

// --- argument parsers (commander calls them; InvalidArgumentError becomes a usage error, exit 2) ----

/** A whole number of minor units (fen, cents) greater than zero. */
export function parseAmount(raw: string): number {
  const trimmed = raw.trim();
  if (!/^\d+$/.test(trimmed)) {
    throw new InvalidArgumentError(
      'the amount is a positive whole number of minor units (fen, cents), e.g. 1999 for 19.99',
    );
  }
  const value = Number(trimmed);
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new InvalidArgumentError('the amount must be greater than 0 and at most 9007199254740991');
  }
  return value;
}

/** A whole number within [min, max]. */
export function intParser(what: string, min: number, max: number) {
  return (raw: string): number => {
    const trimmed = raw.trim();
    const value = Number(trimmed);
    if (!/^-?\d+$/.test(trimmed) || !Number.isSafeInteger(value) || value < min || value > max) {
      throw new InvalidArgumentError(`${what} must be a whole number from ${min} to ${max}`);
    }
    return value;
  };
}

export function parseCurrency(raw: string): string {
  const code = raw.trim().toUpperCase();
  if (!/^[A-Z]{3}$/.test(code)) {
    throw new InvalidArgumentError('the currency is a three-letter ISO 4217 code such as CNY');
  }
  return code;
}

/** Order ids as the payment notification allows them. */
export function parseOrderId(raw: string): string {
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(raw)) {
    throw new InvalidArgumentError('order ids are 1-64 letters, digits, _ or -');
  }
  return raw;
}

/** A positive duration: `30m`, `3s`, `1h`, or plain milliseconds. */
export function parseDuration(raw: string): number {
  const trimmed = raw.trim();
  const value = /^\d+$/.test(trimmed) ? Number(trimmed) : ms(trimmed as ms.StringValue);
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new InvalidArgumentError('expected a positive duration such as 30s, 5m, 1h or milliseconds');
  }
  return Math.round(value);
}

export function parseDurationList(raw: string): number[] {
  const parts = raw.split(',').map((part) => part.trim());
  if (parts.length === 0 || parts.some((part) => part === '')) {
    throw new InvalidArgumentError('expected a comma-separated list of durations, e.g. 3s,30s,60s');
  }
  try {
    return parts.map(parseDuration);
  } catch {
    throw new InvalidArgumentError('expected a comma-separated list of durations, e.g. 3s,30s,60s');
  }
}

/** A value from a fixed list, case-insensitive; the message lists the allowed values. */
export function choiceParser<T extends string>(what: string, allowed: readonly T[]) {
  return (raw: string): T => {
    const value = raw.trim().toUpperCase();
    const match = allowed.find((candidate) => candidate.toUpperCase() === value);
    if (!match) throw new InvalidArgumentError(`unknown ${what}; one of: ${allowed.join(', ')}`);
    return match;
  };
}

export function parseIsoInstant(raw: string): string {
  const time = Date.parse(raw);
  if (!/^\d{4}-\d{2}-\d{2}T/.test(raw) || Number.isNaN(time)) {
    throw new InvalidArgumentError('expected an ISO 8601 instant such as 2025-01-31T12:00:00Z');
  }
  return new Date(time).toISOString();
}

export { redactUrl };

/** An http(s) URL, checked before anything is stored. */
export function parseNotifyUrl(raw: string): string {
  try {
    const url = new URL(raw);
    if (url.protocol === 'http:' || url.protocol === 'https:') return url.toString();
  } catch {
    // fall through
  }
  throw new InvalidArgumentError('expected an http:// or https:// URL');
}

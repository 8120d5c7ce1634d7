import { type Command, InvalidArgumentError } from 'commander';
import {
  type CliContext,
  CliError,
  describeError,
  intParser,
  parseDuration,
  parseOrderId,
} from '../../src/cli/context';
import { cell, emit, formatFields, money, withJson } from '../../src/cli/output';

/** `pay`: the buyer pays at the payment simulator, which then notifies payrecon over RabbitMQ (or not). */

const SIMULATOR_TIMEOUT_MS = 30_000;
const MAX_DELAY_MS = 10 * 60_000;

export interface SimulatorResponse {
  status: number;
  body: Record<string, unknown>;
}

/** One call to the payment simulator's HTTP API; a simulator that is down is named in the error. */
export async function simulatorRequest(
  ctx: CliContext,
  method: 'GET' | 'POST' | 'PUT' | 'PATCH',
  path: string,
  body?: unknown,
): Promise<SimulatorResponse> {
  const base = ctx.getConfig().PROVIDER_URL.replace(/\/$/, '');
  let response: Response;
  try {
    response = await fetch(`${base}${path}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(SIMULATOR_TIMEOUT_MS),
    });
  } catch (error) {
    const cause = (error as { cause?: unknown }).cause;
    throw new CliError(
      `the payment simulator is not reachable at ${base} (start it with: npm run simulator): ${describeError(cause ?? error)}`,
    );
  }
  const text = await response.text();
  let parsed: Record<string, unknown> = {};
  try {
    parsed = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    parsed = { error: text.slice(0, 500) };
  }
  return { status: response.status, body: parsed };
}

export interface PayFaults {
  drop?: boolean;
  duplicate?: number;
  delayMs?: number;
  corrupt?: boolean | 'json' | 'schema';
  forge?: boolean;
  wrongAmount?: boolean | number;
}

interface PayOptions {
  drop?: boolean;
  duplicate?: number;
  delay?: number;
  corrupt?: true | 'json' | 'schema';
  forge?: boolean;
  wrongAmount?: true | number;
  force?: boolean;
  json?: boolean;
}

function parseCorruption(raw: string): 'json' | 'schema' {
  if (raw === 'json' || raw === 'schema') return raw;
  throw new InvalidArgumentError(
    '--corrupt takes json (not JSON at all) or schema (JSON that breaks the schema)',
  );
}

function parseDelay(raw: string): number {
  const value = parseDuration(raw);
  if (value > MAX_DELAY_MS) throw new InvalidArgumentError('the delay is at most 10m');
  return value;
}

export function faultsFrom(options: PayOptions): PayFaults {
  const faults: PayFaults = {};
  if (options.drop) faults.drop = true;
  if (options.duplicate !== undefined) faults.duplicate = options.duplicate;
  if (options.delay !== undefined) faults.delayMs = options.delay;
  if (options.corrupt !== undefined) faults.corrupt = options.corrupt === true ? 'json' : options.corrupt;
  if (options.forge) faults.forge = true;
  if (options.wrongAmount !== undefined) faults.wrongAmount = options.wrongAmount;
  return faults;
}

export function registerPayCommand(program: Command, ctx: CliContext): void {
  withJson(
    program
      .command('pay')
      .description(
        'pay an order at the payment simulator; fault flags change what happens to its notification',
      )
      .argument('<orderId>', 'the order to pay (its trade was opened by `order create`)', parseOrderId)
      .option('--drop', 'publish no notification at all (only the polling fallback can find the payment)')
      .option(
        '--duplicate <n>',
        'publish the notification n times in all, with the same message id',
        intParser('--duplicate', 1, 100),
      )
      .option(
        '--delay <duration>',
        'publish the notification this long after the payment, e.g. 5s (max 10m)',
        parseDelay,
      )
      .option('--corrupt [kind]', 'corrupt the body: json (default, not JSON) or schema', parseCorruption)
      .option('--forge', 'sign the notification with a wrong secret')
      .option(
        '--wrong-amount [minor]',
        'the buyer pays one minor unit less, or exactly this many minor units',
        intParser('--wrong-amount', 0, Number.MAX_SAFE_INTEGER),
      )
      .option('--force', 'pay even a closed trade (a payment racing the close)'),
  ).action(async (orderId: string, options: PayOptions) => {
    const faults = faultsFrom(options);
    const path = `/trades/${encodeURIComponent(orderId)}/pay`;
    const { status, body } = await simulatorRequest(ctx, 'POST', path, {
      faults,
      ...(options.force ? { force: true } : {}),
    });
    if (status === 404) {
      throw new CliError(
        `the payment simulator has no trade for order ${orderId} (orders made with \`payrecon order create\` get one)`,
      );
    }
    if (status === 400) throw new CliError(`the simulator refused the payment: ${cell(body.error)}`, 2);
    if (status >= 400) {
      throw new CliError(`the simulator answered HTTP ${status}: ${cell(body.error ?? body)}`);
    }
    const trade = (body.trade ?? {}) as Record<string, unknown>;
    const notification = (body.notification ?? {}) as Record<string, unknown>;
    const result = { orderId, faults, trade, notification };
    emit(ctx, options, result, () => {
      const outcome = String(notification.outcome ?? 'unknown');
      const copies = Number(notification.copies ?? 0);
      let what = outcome;
      if (outcome === 'published') what = `published${copies > 1 ? ` ${copies} times` : ''}`;
      if (outcome === 'scheduled') what = `scheduled in ${Number(notification.delayMs ?? 0)} ms`;
      const flags = [
        notification.corrupt ? `corrupt (${String(notification.corrupt)})` : null,
        notification.forged ? 'forged signature' : null,
      ].filter(Boolean);
      return formatFields({
        order: orderId,
        trade: trade.tradeNo,
        'trade status': trade.status,
        paid: money(trade.amount as number | null, trade.currency as string | null),
        'paid at': trade.paidAt,
        notification: notification.messageId,
        outcome: `${what}${flags.length > 0 ? `, ${flags.join(', ')}` : ''}`,
      });
    });
  });
}

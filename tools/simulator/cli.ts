import { randomBytes } from 'node:crypto';
import { type Command, InvalidArgumentError } from 'commander';
import {
  type CliContext,
  CliError,
  type CliIo,
  EXIT,
  intParser,
  parseAmount,
  parseCurrency,
  parseDuration,
  parseOrderId,
} from '../../src/cli/context';
import { cell, emit, formatFields, money, withJson } from '../../src/cli/output';
import { createProgram, runMain, runProgram } from '../../src/cli/program';
import { registerBillCommand } from './bill-cli';
import { type PaymentReply, type RefundReply, SimulatorClient, SimulatorHttpError } from './client';
import type { RefundFaults, TradeFaults } from './faults';
import type { RefundView, TradeView } from './routes';

/**
 * The payment simulator's own small CLI (`npm run sim -- <command>`): what a buyer and the provider do,
 * not what an operator of payrecon does. `pay` pays an order's trade, and its fault flags decide what
 * happens to the notification; `trade open` and `trade show` open and read a trade. It talks to the
 * simulator at PROVIDER_URL over its HTTP API (./client.ts). Exit codes as payrecon's CLI: 0 done,
 * 1 failed (the simulator is down: its URL is named), 2 bad usage or input.
 */

const MAX_DELAY_MS = 10 * 60_000;

const HELP = `
The simulator is reached at PROVIDER_URL (default http://127.0.0.1:8090; start it with: npm run simulator).

Exit codes: 0 done, 1 the operation failed, 2 bad usage or input.

Examples:
  npm run sim -- pay ord_... --drop
  npm run sim -- pay ord_... --duplicate 3 --json
  npm run sim -- trade open ord_... --amount 9900 --currency CNY
  npm run sim -- trade show ord_...
  npm run sim -- refund ord_... --amount 500 --processing 5s
  npm run sim -- refund ord_... --amount 500 --out-request-no ord_...-R1 --fail --duplicate 2
  npm run sim -- refunds ord_...
  npm run sim -- trade finish ord_...
  npm run sim -- bill 2026-03-14 --omit ord_... --extra ghost_1:990 --summary-delta pay_amount=1 --gbk --zip
  npm run sim -- bill 2026-03-14 --carry ord_... --ttl 5s --expire-next 1
  npm run sim -- bill 2026-03-14 --show
  npm run sim -- bill 2026-03-14 --download --out bill.csv`;

interface PayFlags {
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

/** The per-payment fault knobs the flags ask for. */
function faultsFrom(flags: PayFlags): TradeFaults {
  const faults: TradeFaults = {};
  if (flags.drop) faults.drop = true;
  if (flags.duplicate !== undefined) faults.duplicate = flags.duplicate;
  if (flags.delay !== undefined) faults.delayMs = flags.delay;
  if (flags.corrupt !== undefined) faults.corrupt = flags.corrupt === true ? 'json' : flags.corrupt;
  if (flags.forge) faults.forge = true;
  if (flags.wrongAmount !== undefined) faults.wrongAmount = flags.wrongAmount;
  return faults;
}

function simulator(ctx: CliContext): SimulatorClient {
  return new SimulatorClient(ctx.getConfig().PROVIDER_URL);
}

function noTrade(orderId: string): CliError {
  return new CliError(
    `the payment simulator has no trade for order ${orderId} (open one with: npm run sim -- trade open ${orderId} --amount <minor>)`,
  );
}

/** A refusal of the simulator as the user should read it: bad input exits 2, the rest 1. */
function refused(error: unknown, orderId: string): unknown {
  if (!(error instanceof SimulatorHttpError)) return error;
  if (error.status === 404) return noTrade(orderId);
  const reason = cell(error.body.error ?? error.body);
  if (error.status === 400) return new CliError(`the simulator refused the request: ${reason}`, EXIT.USAGE);
  return new CliError(`the simulator answered HTTP ${error.status}: ${reason}`);
}

function describeTrade(trade: TradeView): Record<string, unknown> {
  return {
    order: trade.orderId,
    trade: trade.tradeNo,
    'trade status': trade.status,
    amount: money(trade.totalAmount, trade.currency),
    paid: trade.paidAt ? money(trade.amount, trade.currency) : null,
    'paid at': trade.paidAt,
    refunded: trade.refundedAmount > 0 ? money(trade.refundedAmount, trade.currency) : null,
    'closed at': trade.closedAt,
  };
}

const MAX_PROCESSING_MS = 24 * 60 * 60_000;

interface RefundFlags {
  amount: number;
  outRequestNo?: string;
  reason?: string;
  fail?: true | string;
  processing?: number;
  drop?: boolean;
  duplicate?: number;
  delay?: number;
  corrupt?: true | 'json' | 'schema';
  forge?: boolean;
  json?: boolean;
}

function parseProcessing(raw: string): number {
  const value = parseDuration(raw);
  if (value > MAX_PROCESSING_MS) throw new InvalidArgumentError('the processing time is at most 24h');
  return value;
}

function parseOutRequestNo(raw: string): string {
  if (!/^[A-Za-z0-9_-]{1,128}$/.test(raw)) {
    throw new InvalidArgumentError('an out_request_no is 1-128 letters, digits, _ or -');
  }
  return raw;
}

function refundFaultsFrom(flags: RefundFlags): RefundFaults {
  const faults: RefundFaults = {};
  if (flags.processing !== undefined) faults.processingMs = flags.processing;
  if (flags.fail !== undefined) faults.fail = flags.fail;
  if (flags.drop) faults.drop = true;
  if (flags.duplicate !== undefined) faults.duplicate = flags.duplicate;
  if (flags.delay !== undefined) faults.delayMs = flags.delay;
  if (flags.corrupt !== undefined) faults.corrupt = flags.corrupt === true ? 'json' : flags.corrupt;
  if (flags.forge) faults.forge = true;
  return faults;
}

function describeRefund(refund: RefundView): Record<string, unknown> {
  return {
    order: refund.orderId,
    'out request no': refund.outRequestNo,
    refund: refund.refundNo,
    'refund status': refund.status,
    amount: money(refund.amount, refund.currency),
    reason: refund.reason,
    'failure reason': refund.failureReason,
    'requested at': refund.requestedAt,
    'ended at': refund.refundedAt,
  };
}

function describeRefundReply(reply: RefundReply): string {
  const { notification } = reply;
  let what: string | null = null;
  if (notification) {
    what = notification.outcome;
    if (notification.outcome === 'published' && notification.copies > 1) {
      what = `published ${notification.copies} times`;
    }
    if (notification.outcome === 'scheduled') what = `scheduled in ${notification.delayMs} ms`;
    const flags = [
      notification.corrupt ? `corrupt (${notification.corrupt})` : null,
      notification.forged ? 'forged signature' : null,
    ].filter(Boolean);
    if (flags.length > 0) what = `${what}, ${flags.join(', ')}`;
  } else if (reply.status === 'PROCESSING') {
    what = 'when the refund ends';
  }
  return formatFields({
    ...describeRefund(reply),
    requested: reply.created ? 'now' : 'before (the same refund, nothing done again)',
    notification: notification?.messageId ?? null,
    outcome: what,
  });
}

function describePayment(orderId: string, { trade, notification }: PaymentReply): string {
  let what: string = notification.outcome;
  if (notification.outcome === 'published' && notification.copies > 1) {
    what = `published ${notification.copies} times`;
  }
  if (notification.outcome === 'scheduled') what = `scheduled in ${notification.delayMs} ms`;
  const flags = [
    notification.corrupt ? `corrupt (${notification.corrupt})` : null,
    notification.forged ? 'forged signature' : null,
  ].filter(Boolean);
  return formatFields({
    order: orderId,
    trade: trade.tradeNo,
    'trade status': trade.status,
    paid: money(trade.amount, trade.currency),
    'paid at': trade.paidAt,
    notification: notification.messageId,
    outcome: `${what}${flags.length > 0 ? `, ${flags.join(', ')}` : ''}`,
  });
}

function registerPayCommand(program: Command, ctx: CliContext): void {
  withJson(
    program
      .command('pay')
      .description('the buyer pays the order; fault flags change what happens to its notification')
      .argument(
        '<orderId>',
        "the order whose trade is paid (opened by payrecon's order create)",
        parseOrderId,
      )
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
  ).action(async (orderId: string, flags: PayFlags) => {
    const faults = faultsFrom(flags);
    const reply = await simulator(ctx)
      .pay(orderId, { faults, ...(flags.force ? { force: true } : {}) })
      .catch((error: unknown) => {
        throw refused(error, orderId);
      });
    emit(ctx, flags, { orderId, faults, ...reply }, () => describePayment(orderId, reply));
  });
}

function registerTradeCommands(program: Command, ctx: CliContext): void {
  const trade = program.command('trade').description("open or read an order's trade at the simulator");

  withJson(
    trade
      .command('open')
      .description("open the order's trade (idempotent for the same amount and currency)")
      .argument('<orderId>', 'the order the trade is for', parseOrderId)
      .requiredOption('--amount <minor>', 'what the order costs, in minor units (fen, cents)', parseAmount)
      .option('--currency <code>', 'ISO 4217 currency', parseCurrency, 'CNY'),
  ).action(async (orderId: string, options: { amount: number; currency: string; json?: boolean }) => {
    const opened = await simulator(ctx)
      .openTrade({ orderId, amount: options.amount, currency: options.currency })
      .catch((error: unknown) => {
        throw refused(error, orderId);
      });
    emit(ctx, options, opened, () =>
      formatFields({ ...describeTrade(opened), opened: opened.created ? 'now' : 'before (unchanged)' }),
    );
  });

  withJson(
    trade
      .command('show')
      .description('the trade as the provider reports it')
      .argument('<orderId>', 'the order whose trade to show', parseOrderId),
  ).action(async (orderId: string, options: { json?: boolean }) => {
    const found = await simulator(ctx).getTrade(orderId);
    if (!found) throw noTrade(orderId);
    emit(ctx, options, found, () => formatFields(describeTrade(found)));
  });

  withJson(
    trade
      .command('finish')
      .description("end the paid trade's refund window (TRADE_FINISHED): refunds are refused from then on")
      .argument('<orderId>', 'the order whose trade to finish', parseOrderId),
  ).action(async (orderId: string, options: { json?: boolean }) => {
    const finished = await simulator(ctx)
      .finishTrade(orderId)
      .catch((error: unknown) => {
        throw refused(error, orderId);
      });
    emit(ctx, options, finished, () => formatFields(describeTrade(finished)));
  });
}

function registerRefundCommands(program: Command, ctx: CliContext): void {
  withJson(
    program
      .command('refund')
      .description(
        "refund (part of) a paid order's trade; flags decide how the refund ends and its notification",
      )
      .argument('<orderId>', 'the order whose trade is refunded', parseOrderId)
      .requiredOption('--amount <minor>', 'how much to refund, in minor units (fen, cents)', parseAmount)
      .option(
        '--out-request-no <id>',
        'the idempotency key: the same one again is the same refund (default: a new one)',
        parseOutRequestNo,
      )
      .option('--reason <text>', 'why the buyer is refunded')
      .option('--fail [reason]', 'the refund ends FAILED (notice REFUND_FAILED)')
      .option(
        '--processing <duration>',
        'stay PROCESSING this long, e.g. 5s (max 24h), then end',
        parseProcessing,
      )
      .option('--drop', 'publish no refund notification at all')
      .option(
        '--duplicate <n>',
        'publish the refund notification n times in all, with the same message id',
        intParser('--duplicate', 1, 100),
      )
      .option(
        '--delay <duration>',
        'publish the notification this long after the refund ends (max 10m)',
        parseDelay,
      )
      .option('--corrupt [kind]', 'corrupt the body: json (default, not JSON) or schema', parseCorruption)
      .option('--forge', 'sign the notification with a wrong secret'),
  ).action(async (orderId: string, flags: RefundFlags) => {
    const faults = refundFaultsFrom(flags);
    const outRequestNo = flags.outRequestNo ?? `${orderId}-sim-${randomBytes(4).toString('hex')}`.slice(-128);
    const reply = await simulator(ctx)
      .refund(orderId, {
        outRequestNo,
        amount: flags.amount,
        ...(flags.reason === undefined ? {} : { reason: flags.reason }),
        faults,
      })
      .catch((error: unknown) => {
        throw refused(error, orderId);
      });
    emit(ctx, flags, { faults, ...reply }, () => describeRefundReply(reply));
  });

  withJson(
    program
      .command('refunds')
      .description("the order's refunds and their counts, as the provider reports them")
      .argument('<orderId>', 'the order whose refunds to show', parseOrderId),
  ).action(async (orderId: string, options: { json?: boolean }) => {
    const client = simulator(ctx);
    const refunds = await client.listRefunds(orderId).catch((error: unknown) => {
      throw refused(error, orderId);
    });
    const stats = await client.refundStats(orderId);
    emit(ctx, options, { orderId, refunds, stats }, () =>
      [
        ...refunds.map((refund) => formatFields(describeRefund(refund))),
        formatFields({
          refunds: stats.refunds,
          processing: stats.processing,
          succeeded: stats.succeeded,
          failed: stats.failed,
          'executed (money moved)': stats.executions,
          'most executions of one refund': stats.maxExecutions,
        }),
      ].join('\n\n'),
    );
  });
}

export function buildSimulatorProgram(ctx: CliContext): Command {
  const program = createProgram(
    ctx,
    'sim',
    'the payment simulator: pay an order with notification faults, refund it, open, show and finish trades, fault and download daily bills',
    HELP,
  );
  registerPayCommand(program, ctx);
  registerTradeCommands(program, ctx);
  registerRefundCommands(program, ctx);
  registerBillCommand(program, ctx);
  return program;
}

export function runSimulatorCli(argv: string[], io: CliIo): Promise<number> {
  return runProgram(buildSimulatorProgram, argv, io);
}

if (require.main === module) {
  void runMain(runSimulatorCli);
}

import { writeFile } from 'node:fs/promises';
import { type Command, InvalidArgumentError } from 'commander';
import { unzipSync } from 'fflate';
import iconv from 'iconv-lite';
import { type CliContext, CliError, EXIT, intParser, parseDuration, UsageError } from '../../src/cli/context';
import { emit, formatFields } from '../../src/cli/output';
import { isBillDate, type StatementFormat, type StatementSummary } from '../../src/provider/statement-format';
import type { BillFaults } from './bill-faults';
import { type DownloadedBill, SimulatorClient, SimulatorHttpError } from './client';

/**
 * `sim bill <date> ...`: the faults of one day's trade statement (set, show, clear) and its download,
 * decoded to UTF-8 CSV. Registered by ./cli.ts.
 */

const MAX_TTL_MS = 24 * 3_600_000;
const ORDER_ID = /^[A-Za-z0-9_-]{1,64}$/;
const OUT_REQUEST_NO = /^[A-Za-z0-9_-]{1,128}$/;

/** The summary's fields by their camelCase names and as the summary line spells them. */
const SUMMARY_FIELDS: Record<string, keyof StatementSummary> = {
  rows: 'rows',
  payCount: 'payCount',
  pay_count: 'payCount',
  payAmount: 'payAmount',
  pay_amount: 'payAmount',
  refundCount: 'refundCount',
  refund_count: 'refundCount',
  refundAmount: 'refundAmount',
  refund_amount: 'refundAmount',
  fee: 'fee',
};

interface BillFlags {
  omit: string[];
  extra: { orderId: string; amount: number }[];
  amountDelta: [string, number][];
  status: [string, string][];
  duplicate: string[];
  omitRefund: string[];
  carry: string[];
  summaryDelta: [keyof StatementSummary, number][];
  ttl?: number;
  expireNext?: number;
  gbk?: boolean;
  utf8?: boolean;
  zip?: boolean;
  clear?: boolean;
  show?: boolean;
  download?: boolean;
  out?: string;
  json?: boolean;
}

function parseBillDate(raw: string): string {
  if (!isBillDate(raw))
    throw new InvalidArgumentError('the bill date is a real calendar day written YYYY-MM-DD');
  return raw;
}

function orderId(raw: string, what: string): string {
  if (!ORDER_ID.test(raw))
    throw new InvalidArgumentError(`${what}: order ids are 1-64 letters, digits, _ or -`);
  return raw;
}

/** `ORDER:VALUE`, split at the last colon. */
function pair(raw: string, what: string, shape: string): [string, string] {
  const at = raw.lastIndexOf(':');
  if (at <= 0 || at === raw.length - 1) throw new InvalidArgumentError(`${what} takes ${shape}`);
  return [orderId(raw.slice(0, at), what), raw.slice(at + 1)];
}

function whole(raw: string, what: string, min: number): number {
  const value = Number(raw);
  if (!/^-?\d+$/.test(raw) || !Number.isSafeInteger(value) || value < min) {
    throw new InvalidArgumentError(`${what} must be a whole number${min === 0 ? ' of minor units' : ''}`);
  }
  return value;
}

const collect =
  <T>(parseOne: (raw: string) => T) =>
  (raw: string, all: T[]): T[] => [...all, parseOne(raw)];

function parseTtl(raw: string): number {
  const value = parseDuration(raw);
  if (value > MAX_TTL_MS) throw new InvalidArgumentError('the URL lifetime is at most 24h');
  return value;
}

/** The day's faults the flags ask for; null when they ask for none. */
function faultsFrom(flags: BillFlags): BillFaults | null {
  if (flags.gbk && flags.utf8) throw new UsageError('--gbk and --utf8 exclude each other');
  const faults: BillFaults = {};
  if (flags.omit.length > 0) faults.omitPayments = flags.omit;
  if (flags.extra.length > 0) faults.extraPayments = flags.extra;
  if (flags.amountDelta.length > 0) faults.amountDeltas = Object.fromEntries(flags.amountDelta);
  if (flags.status.length > 0) faults.statusOverrides = Object.fromEntries(flags.status);
  if (flags.duplicate.length > 0) faults.duplicatePayments = flags.duplicate;
  if (flags.omitRefund.length > 0) faults.omitRefunds = flags.omitRefund;
  if (flags.carry.length > 0) faults.carryToNextDay = flags.carry;
  if (flags.summaryDelta.length > 0) {
    faults.summaryDelta = {};
    for (const [field, delta] of flags.summaryDelta) faults.summaryDelta[field] = delta;
  }
  if (flags.ttl !== undefined) faults.urlTtlMs = flags.ttl;
  if (flags.expireNext !== undefined) faults.expireNextUrls = flags.expireNext;
  if (flags.gbk) faults.encoding = 'gbk';
  if (flags.utf8) faults.encoding = 'utf-8';
  if (flags.zip) faults.zipped = true;
  return Object.keys(faults).length > 0 ? faults : null;
}

function refused(error: unknown): unknown {
  if (!(error instanceof SimulatorHttpError)) return error;
  const reason = typeof error.body.error === 'string' ? error.body.error : JSON.stringify(error.body);
  if (error.status === 400) return new CliError(`the simulator refused the request: ${reason}`, EXIT.USAGE);
  return new CliError(`the simulator answered HTTP ${error.status}: ${reason}`);
}

function describeFaults(billDate: string, faults: BillFaults): string {
  const list = (values: string[] | undefined) => (values && values.length > 0 ? values.join(', ') : null);
  const entries = (record: Record<string, unknown> | undefined) =>
    record && Object.keys(record).length > 0
      ? Object.entries(record)
          .map(([key, value]) => `${key}:${value}`)
          .join(', ')
      : null;
  return formatFields({
    'bill date': billDate,
    'omitted payments': list(faults.omitPayments),
    'extra payments': list(faults.extraPayments?.map((extra) => `${extra.orderId}:${extra.amount}`)),
    'amount deltas': entries(faults.amountDeltas),
    'status overrides': entries(faults.statusOverrides),
    'duplicated payments': list(faults.duplicatePayments),
    'omitted refunds': list(faults.omitRefunds),
    'carried to next day': list(faults.carryToNextDay),
    'summary delta': entries(faults.summaryDelta),
    'url lifetime': faults.urlTtlMs === undefined ? null : `${faults.urlTtlMs} ms`,
    'urls born expired': faults.expireNextUrls ?? null,
    encoding: faults.encoding ?? null,
    zipped: faults.zipped ?? null,
  });
}

/** Attempts at a download whose URL expired before it was used (as a real client asks again). */
const DOWNLOAD_ATTEMPTS = 5;

/** Downloads the day's bill and decodes it (unzipped, UTF-8); an expired URL is asked for again. */
async function downloadText(client: SimulatorClient, billDate: string): Promise<string> {
  for (let attempt = 1; ; attempt += 1) {
    const location = await client.billDownloadUrl(billDate);
    try {
      return decode(await client.downloadBill(location.downloadUrl), location.format);
    } catch (error) {
      const expired = error instanceof SimulatorHttpError && error.body.code === 'URL_EXPIRED';
      if (!expired || attempt >= DOWNLOAD_ATTEMPTS) throw error;
    }
  }
}

function decode(file: DownloadedBill, format: StatementFormat): string {
  let bytes: Uint8Array = file.bytes;
  if (format.zipped) {
    const entries = Object.values(unzipSync(file.bytes));
    if (entries.length !== 1) throw new CliError(`the zipped bill holds ${entries.length} files, not 1`);
    bytes = entries[0] as Uint8Array;
  }
  return iconv.decode(Buffer.from(bytes), format.encoding);
}

export function registerBillCommand(program: Command, ctx: CliContext): void {
  program
    .command('bill')
    .description("one day's trade statement: set its faults (flags), --show them, or --download it")
    .argument('<date>', 'the bill date, YYYY-MM-DD (Asia/Shanghai)', parseBillDate)
    .option(
      '--omit <order>',
      "leave out the order's payment row (repeatable)",
      collect((raw) => orderId(raw, '--omit')),
      [],
    )
    .option(
      '--extra <order:amount>',
      'an extra payment row, amount in minor units (repeatable)',
      collect((raw) => {
        const [id, amount] = pair(raw, '--extra', 'ORDER:AMOUNT, e.g. ord_1:990');
        return { orderId: id, amount: whole(amount, '--extra AMOUNT', 0) };
      }),
      [],
    )
    .option(
      '--amount-delta <order:delta>',
      "add delta minor units to the order's payment row, e.g. ord_1:-1 (repeatable)",
      collect((raw): [string, number] => {
        const [id, delta] = pair(raw, '--amount-delta', 'ORDER:DELTA, e.g. ord_1:-1');
        const value = whole(delta, '--amount-delta DELTA', Number.MIN_SAFE_INTEGER);
        if (value === 0) throw new InvalidArgumentError('--amount-delta DELTA is not 0');
        return [id, value];
      }),
      [],
    )
    .option(
      '--status <order:status>',
      "print this status on the order's payment row, e.g. ord_1:TRADE_CLOSED (repeatable)",
      collect((raw): [string, string] => {
        const [id, status] = pair(raw, '--status', 'ORDER:STATUS, e.g. ord_1:TRADE_CLOSED');
        if (!/^[A-Z_]{1,32}$/.test(status))
          throw new InvalidArgumentError('--status STATUS is 1-32 capitals or _');
        return [id, status];
      }),
      [],
    )
    .option(
      '--duplicate <order>',
      "list the order's payment row twice (repeatable)",
      collect((raw) => orderId(raw, '--duplicate')),
      [],
    )
    .option(
      '--omit-refund <outRequestNo>',
      "leave out the refund's row (repeatable)",
      collect((raw) => {
        if (!OUT_REQUEST_NO.test(raw)) {
          throw new InvalidArgumentError('--omit-refund: an out_request_no is 1-128 letters, digits, _ or -');
        }
        return raw;
      }),
      [],
    )
    .option(
      '--carry <order>',
      "list the order's payment on the next day's bill, just after midnight (repeatable)",
      collect((raw) => orderId(raw, '--carry')),
      [],
    )
    .option(
      '--summary-delta <field=n>',
      `add n to a summary field (${Object.keys(SUMMARY_FIELDS)
        .filter((key) => !key.includes('_'))
        .join(', ')}; amounts in minor units; repeatable)`,
      collect((raw): [keyof StatementSummary, number] => {
        const [name, value] = raw.split('=', 2);
        const field = SUMMARY_FIELDS[name ?? ''];
        if (!field || value === undefined) {
          throw new InvalidArgumentError(
            `--summary-delta takes field=n, field one of ${Object.keys(SUMMARY_FIELDS).join(', ')}`,
          );
        }
        return [field, whole(value, '--summary-delta n', Number.MIN_SAFE_INTEGER)];
      }),
      [],
    )
    .option('--ttl <duration>', 'how long download URLs of this day live, e.g. 5s (max 24h)', parseTtl)
    .option(
      '--expire-next <n>',
      'hand out the next n URLs already expired',
      intParser('--expire-next', 0, 1_000),
    )
    .option('--gbk', 'serve the bill GBK-encoded')
    .option('--utf8', 'serve the bill UTF-8-encoded')
    .option('--zip', 'serve the bill zipped')
    .option('--clear', "remove the day's faults")
    .option('--show', "print the day's faults")
    .option('--download', 'download the bill and print it (decoded to UTF-8 CSV)')
    .option('--out <file>', 'with --download: write the CSV to this file instead')
    .option('--json', 'print machine-readable JSON instead of a table')
    .action(async (billDate: string, flags: BillFlags) => {
      const faults = faultsFrom(flags);
      if (flags.show && (faults || flags.clear))
        throw new UsageError('--show only prints: give it no fault flags');
      if (flags.clear && faults) throw new UsageError('--clear removes the faults: give it no fault flags');
      if (flags.out !== undefined && !flags.download) throw new UsageError('--out goes with --download');
      const client = new SimulatorClient(ctx.getConfig().PROVIDER_URL);
      try {
        if (faults || flags.clear) {
          const set = await client.setBillFaults(billDate, faults ?? {});
          if (!flags.download) {
            emit(ctx, flags, { billDate, faults: set }, () => describeFaults(billDate, set));
            return;
          }
        }
        if (flags.download) {
          const text = await downloadText(client, billDate);
          if (flags.out === undefined) {
            ctx.io.stdout.write(text);
            return;
          }
          await writeFile(flags.out, text, 'utf8');
          const rows = text.split('\n').filter((line) => line !== '' && !line.startsWith('#')).length - 1;
          emit(ctx, flags, { billDate, file: flags.out, rows }, () =>
            formatFields({ 'bill date': billDate, written: flags.out, rows }),
          );
          return;
        }
        const shown = await client.getBillFaults(billDate);
        emit(ctx, flags, { billDate, faults: shown }, () => describeFaults(billDate, shown));
      } catch (error) {
        throw refused(error);
      }
    });
}

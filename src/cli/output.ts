import type { Command } from 'commander';
import type { CliContext } from './context';

/**
 * Shared output of every command: `--json` prints one JSON document on stdout (machine-readable, stable
 * keys); otherwise a compact table or a key/value block for a human. Warnings go to stderr either way.
 */

export interface Column<Row> {
  header: string;
  value: (row: Row) => unknown;
  /** Cut longer cells to this many characters (with an ellipsis). */
  max?: number;
  align?: 'left' | 'right';
}

/** `--json` on a command, with the same wording everywhere. */
export function withJson(command: Command): Command {
  return command.option('--json', 'print machine-readable JSON instead of a table');
}

export function cell(value: unknown): string {
  if (value === null || value === undefined || value === '') return '-';
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return value.length === 0 ? '-' : value.map(cell).join(',');
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value).replace(/\s+/g, ' ');
}

function truncate(text: string, max: number | undefined): string {
  if (!max || text.length <= max) return text;
  return `${text.slice(0, Math.max(1, max - 1))}…`;
}

/** A compact table: a header row, then one row per item; `empty` when there is none. */
export function formatTable<Row>(rows: readonly Row[], columns: readonly Column<Row>[], empty = '(none)') {
  if (rows.length === 0) return empty;
  const cells = rows.map((row) => columns.map((column) => truncate(cell(column.value(row)), column.max)));
  const widths = columns.map((column, index) =>
    Math.max(column.header.length, ...cells.map((line) => (line[index] ?? '').length)),
  );
  const render = (line: string[]) =>
    line
      .map((text, index) => {
        const width = widths[index] ?? 0;
        return columns[index]?.align === 'right' ? text.padStart(width) : text.padEnd(width);
      })
      .join('  ')
      .trimEnd();
  return [render(columns.map((column) => column.header)), ...cells.map((line) => render(line))].join('\n');
}

/** `key: value` lines with the keys aligned. */
export function formatFields(fields: Record<string, unknown>): string {
  const keys = Object.keys(fields);
  const width = Math.max(0, ...keys.map((key) => key.length));
  return keys.map((key) => `${`${key}:`.padEnd(width + 1)} ${cell(fields[key])}`).join('\n');
}

/** Prints `data` as JSON under --json, else the human rendering. */
export function emit(ctx: CliContext, options: { json?: boolean }, data: unknown, human: () => string): void {
  if (options.json) ctx.json(data);
  else ctx.out(human());
}

/** Minor units as a decimal amount: 12345 CNY → "123.45 CNY". */
export function money(amount: number | null | undefined, currency: string | null | undefined): string {
  if (amount === null || amount === undefined) return '-';
  const sign = amount < 0 ? '-' : '';
  const abs = Math.abs(amount);
  return `${sign}${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, '0')}${currency ? ` ${currency}` : ''}`;
}

export function isoOrNull(value: Date | string | null | undefined): string | null {
  if (value === null || value === undefined) return null;
  return value instanceof Date ? value.toISOString() : value;
}

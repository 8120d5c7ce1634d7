import { type Readable, Transform, type TransformCallback } from 'node:stream';
import { parse } from 'csv-parse';
import { Unzip, UnzipInflate } from 'fflate';
import iconv from 'iconv-lite';
import {
  parseSummaryLine,
  STATEMENT_COLUMNS,
  type StatementFormat,
  type StatementRow,
  type StatementSummary,
  SUMMARY_PREFIX,
  toStatementRow,
} from './statement-format';

/**
 * Reads a downloaded statement as a stream of entries, with flat memory however long the day: unzip
 * (fflate, streaming), decode (iconv-lite: GBK or UTF-8), CSV (csv-parse). A line that cannot be read
 * is an entry of its own with the reason, so the caller keeps it rather than losing it.
 */

export type StatementEntry =
  | { kind: 'row'; line: number; row: StatementRow }
  | { kind: 'rejected'; line: number; reason: string }
  | { kind: 'summary'; line: number; summary: StatementSummary };

export class StatementFormatError extends Error {
  override name = 'StatementFormatError';
}

export async function* readStatement(
  file: Readable,
  format: StatementFormat,
): AsyncGenerator<StatementEntry> {
  const bytes = format.zipped ? file.pipe(new FirstZipEntry()) : file;
  const parser = bytes.pipe(iconv.decodeStream(format.encoding)).pipe(
    parse({
      bom: true,
      // Comment lines are records too: the summary is one of them.
      relax_column_count: true,
      relax_quotes: true,
      skip_empty_lines: true,
      info: true,
    }),
  );
  file.on('error', (error) => parser.destroy(error));
  let header = false;
  for await (const { record, info } of parser as AsyncIterable<{
    record: string[];
    info: { lines: number };
  }>) {
    const line = info.lines;
    const first = record[0] ?? '';
    if (first.startsWith('#')) {
      const text = record.join(',');
      if (text.startsWith(SUMMARY_PREFIX)) {
        try {
          yield { kind: 'summary', line, summary: parseSummaryLine(text) };
        } catch (error) {
          yield { kind: 'rejected', line, reason: `summary: ${(error as Error).message}` };
        }
      }
      continue;
    }
    if (!header) {
      if (record.join(',') !== STATEMENT_COLUMNS.join(',')) {
        throw new StatementFormatError(
          `line ${line}: expected the header ${STATEMENT_COLUMNS.join(',')}, found ${record.join(',').slice(0, 200)}`,
        );
      }
      header = true;
      continue;
    }
    try {
      yield { kind: 'row', line, row: toStatementRow(record) };
    } catch (error) {
      yield { kind: 'rejected', line, reason: (error as Error).message };
    }
  }
  if (!header) throw new StatementFormatError('the statement has no header row');
}

/** The first file of a zip archive, streamed (fflate inflates each pushed chunk synchronously). */
class FirstZipEntry extends Transform {
  private readonly unzip = new Unzip();
  private entries = 0;

  constructor() {
    super();
    this.unzip.register(UnzipInflate);
    this.unzip.onfile = (entry) => {
      if (this.entries++ > 0) return;
      entry.ondata = (error, data) => {
        if (error) this.destroy(new StatementFormatError(`the zip cannot be read: ${error.message}`));
        else if (data.length > 0) this.push(Buffer.from(data.buffer, data.byteOffset, data.length));
      };
      entry.start();
    };
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    try {
      this.unzip.push(chunk);
      done();
    } catch (error) {
      done(new StatementFormatError(`the zip cannot be read: ${(error as Error).message}`));
    }
  }

  override _flush(done: TransformCallback): void {
    try {
      this.unzip.push(new Uint8Array(0), true);
      done(this.entries === 0 ? new StatementFormatError('the zip holds no file') : null);
    } catch (error) {
      done(new StatementFormatError(`the zip cannot be read: ${(error as Error).message}`));
    }
  }
}

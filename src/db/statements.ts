import { createHash } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { StatementEntry } from '../provider/statement';
import type { StatementFormat, StatementRow, StatementSummary } from '../provider/statement-format';
import type { Sql } from './client';
import type { RejectedLine } from './reconciliation-schema';

/**
 * The provider's statements as payrecon keeps them: the raw file in 1 MiB chunks (so any worker can
 * read it back, streamed), its SHA-256, and its rows staged by COPY in batches that each commit with the
 * count staged so far, so a retried parse resumes after the last batch instead of starting over.
 */

const CHUNK_BYTES = 1 << 20;
const MAX_REJECTED_KEPT = 100;

export interface StoredStatement {
  id: number;
  sha256: string;
  bytes: number;
  /** False when the same file (same hash) was stored before: its rows are reused. */
  isNew: boolean;
}

/** Stores a download as it streams, hashing it; `onProgress` after each chunk (heartbeats). */
export async function storeStatement(
  sql: Sql,
  input: { provider: string; billDate: string; format: StatementFormat },
  file: Readable,
  onProgress: (bytes: number) => void = () => {},
): Promise<StoredStatement> {
  const [row] = await sql<{ id: string }[]>`
    insert into reconciliation_statements (provider, bill_date, encoding, zipped)
    values (${input.provider}, ${input.billDate}, ${input.format.encoding}, ${input.format.zipped})
    returning id`;
  const id = Number(row?.id);
  const hash = createHash('sha256');
  let bytes = 0;
  let seq = 0;
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  const flush = async () => {
    if (pendingBytes === 0) return;
    const data = Buffer.concat(pending, pendingBytes);
    pending = [];
    pendingBytes = 0;
    await sql`insert into reconciliation_statement_chunks (statement_id, seq, data) values (${id}, ${seq++}, ${data})`;
    onProgress(bytes);
  };
  try {
    await pipeline(
      file,
      new Writable({
        write(chunk: Buffer, _encoding, done) {
          hash.update(chunk);
          bytes += chunk.length;
          pending.push(chunk);
          pendingBytes += chunk.length;
          if (pendingBytes < CHUNK_BYTES) return done();
          flush().then(() => done(), done);
        },
        final(done) {
          flush().then(() => done(), done);
        },
      }),
    );
  } catch (error) {
    await discardStatement(sql, id);
    throw error;
  }
  const sha256 = hash.digest('hex');
  const [earlier] = await sql<{ id: string; bytes: string }[]>`
    select id, bytes from reconciliation_statements
    where provider = ${input.provider} and bill_date = ${input.billDate} and sha256 = ${sha256}`;
  if (earlier) {
    await discardStatement(sql, id);
    return { id: Number(earlier.id), sha256, bytes: Number(earlier.bytes), isNew: false };
  }
  await sql`update reconciliation_statements set sha256 = ${sha256}, bytes = ${bytes} where id = ${id}`;
  return { id, sha256, bytes, isNew: true };
}

async function discardStatement(sql: Sql, id: number): Promise<void> {
  await sql.begin(async (tx) => {
    await tx`delete from reconciliation_statement_chunks where statement_id = ${id}`;
    await tx`delete from reconciliation_statements where id = ${id}`;
  });
}

export interface StatementRecord {
  id: number;
  provider: string;
  billDate: string;
  sha256: string | null;
  bytes: number | null;
  format: StatementFormat;
  rowsStaged: number;
  parsedAt: string | null;
  declaredSummary: StatementSummary | null;
  rejectedCount: number;
}

export async function findStatement(sql: Sql, id: number): Promise<StatementRecord | undefined> {
  const [row] = await sql<
    {
      id: string;
      provider: string;
      bill_date: string;
      sha256: string | null;
      bytes: string | null;
      encoding: 'utf-8' | 'gbk';
      zipped: boolean;
      rows_staged: number;
      parsed_at: string | null;
      declared_summary: StatementSummary | null;
      rejected_count: number;
    }[]
  >`select * from reconciliation_statements where id = ${id}`;
  if (!row) return undefined;
  return {
    id: Number(row.id),
    provider: row.provider,
    billDate: row.bill_date,
    sha256: row.sha256,
    bytes: row.bytes === null ? null : Number(row.bytes),
    format: { encoding: row.encoding, zipped: row.zipped },
    rowsStaged: row.rows_staged,
    parsedAt: row.parsed_at,
    declaredSummary: row.declared_summary,
    rejectedCount: row.rejected_count,
  };
}

/** The stored file, read back one chunk at a time. */
export function readStoredStatement(sql: Sql, id: number): Readable {
  let seq = 0;
  return new Readable({
    read() {
      sql<{ data: Buffer }[]>`
        select data from reconciliation_statement_chunks where statement_id = ${id} and seq = ${seq}`.then(
        ([chunk]) => {
          seq++;
          this.push(chunk ? chunk.data : null);
        },
        (error) => this.destroy(error),
      );
    },
  });
}

export interface StagingProgress {
  rowsStaged: number;
  /** Where this attempt started: non-zero when an earlier attempt had staged some batches. */
  resumedFrom: number;
  rejected: number;
}

/**
 * Copies the statement's rows into reconciliation_statement_rows, `batchRows` per transaction, each
 * with the new rows_staged; rows an earlier attempt committed are skipped. Ends by marking it parsed
 * with the declared summary and the rejected lines.
 */
export async function stageStatementRows(
  sql: Sql,
  statement: StatementRecord,
  entries: AsyncIterable<StatementEntry>,
  options: { batchRows?: number; onBatch?: (progress: StagingProgress) => void } = {},
): Promise<StagingProgress> {
  const batchRows = options.batchRows ?? 50_000;
  const resumedFrom = statement.rowsStaged;
  let seen = 0;
  let staged = resumedFrom;
  let batch: string[] = [];
  let summary: StatementSummary | null = null;
  const rejected: RejectedLine[] = [];
  let rejectedCount = 0;
  const commit = async () => {
    if (batch.length === 0) return;
    const lines = batch;
    batch = [];
    const next = staged + lines.length;
    await sql.begin(async (tx) => {
      const copy = await tx`
        copy reconciliation_statement_rows
          (statement_id, line_no, trade_no, order_id, type, out_request_no, currency, amount, fee, status, occurred_at)
        from stdin`.writable();
      await pipeline(Readable.from(lines), copy);
      await tx`update reconciliation_statements set rows_staged = ${next} where id = ${statement.id}`;
    });
    staged = next;
    options.onBatch?.({ rowsStaged: staged, resumedFrom, rejected: rejectedCount });
  };
  for await (const entry of entries) {
    if (entry.kind === 'summary') {
      summary = entry.summary;
    } else if (entry.kind === 'rejected') {
      rejectedCount++;
      if (rejected.length < MAX_REJECTED_KEPT) rejected.push({ line: entry.line, reason: entry.reason });
    } else if (++seen > resumedFrom) {
      batch.push(copyLine(statement.id, entry.line, entry.row));
      if (batch.length >= batchRows) await commit();
    }
  }
  await commit();
  await sql`
    update reconciliation_statements
    set parsed_at = now(), declared_summary = ${summary === null ? null : JSON.stringify(summary)}::jsonb,
        rejected_lines = ${JSON.stringify(rejected)}::jsonb, rejected_count = ${rejectedCount}
    where id = ${statement.id}`;
  // Fresh statistics before the match: without them the planner takes the new rows for one row and
  // joins every order against every row (quadratic; tools/bench/README.md).
  await sql`analyze reconciliation_statement_rows`;
  return { rowsStaged: staged, resumedFrom, rejected: rejectedCount };
}

/** One row in COPY's text format: tab-separated, backslash escapes, \N for null. */
function copyLine(statementId: number, line: number, row: StatementRow): string {
  return `${[
    statementId,
    line,
    copyText(row.tradeNo),
    copyText(row.orderId),
    row.type,
    row.outRequestNo === null ? '\\N' : copyText(row.outRequestNo),
    copyText(row.currency),
    row.amount,
    row.fee,
    copyText(row.status),
    row.occurredAt.toISOString(),
  ].join('\t')}\n`;
}

function copyText(value: string): string {
  return value.replace(/[\\\t\n\r]/g, (c) =>
    c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r',
  );
}

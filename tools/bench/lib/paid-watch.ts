import type { Sql } from '../../../src/db/client';
import { LatencyHistogram } from './hist';

export interface Settlement {
  orderId: string;
  status: string;
  settledBy: string | null;
  /** orders.updated_at of the settling conditional update, epoch ms (the database's clock = this host's). */
  settledAt: number;
  latencyMs: number;
}

/**
 * Watches orders until they leave UNPAID. Latency is computed from the row itself, `updated_at` of the
 * conditional update (now() of that statement) minus the moment the bench sent the payment, so the
 * poll interval (default 25 ms) only delays noticing a settlement, never the number measured.
 */
export class SettlementWatcher {
  private readonly pending = new Map<string, number>();
  private readonly settled: Settlement[] = [];
  private readonly timer: NodeJS.Timeout;
  private polling = false;
  pollErrors = 0;

  constructor(
    private readonly sql: Sql,
    intervalMs = 25,
  ) {
    this.timer = setInterval(() => void this.poll(), intervalMs);
  }

  /** Start watching an order whose payment was sent at `sentAt` (epoch ms). */
  track(orderId: string, sentAt: number): void {
    this.pending.set(orderId, sentAt);
  }

  get pendingCount(): number {
    return this.pending.size;
  }

  private async poll(): Promise<void> {
    if (this.polling || this.pending.size === 0) return;
    this.polling = true;
    try {
      const ids = [...this.pending.keys()];
      const rows = await this.sql<{ id: string; status: string; settled_by: string | null; t: number }[]>`
        select id, status, settled_by, extract(epoch from updated_at) * 1000 as t
        from orders where id = any(${ids}) and status <> 'UNPAID'`;
      for (const row of rows) {
        const sentAt = this.pending.get(row.id);
        if (sentAt === undefined) continue;
        this.pending.delete(row.id);
        const settledAt = Number(row.t);
        this.settled.push({
          orderId: row.id,
          status: row.status,
          settledBy: row.settled_by,
          settledAt,
          latencyMs: settledAt - sentAt,
        });
      }
    } catch {
      this.pollErrors++;
    } finally {
      this.polling = false;
    }
  }

  /** Resolves when nothing is pending or `timeoutMs` passed; returns everything settled so far. */
  async drain(timeoutMs: number): Promise<Settlement[]> {
    const until = Date.now() + timeoutMs;
    while (this.pending.size > 0 && Date.now() < until) {
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    await this.poll();
    return [...this.settled];
  }

  /** Forget everything (between two offered rates). */
  reset(): void {
    this.pending.clear();
    this.settled.length = 0;
  }

  close(): void {
    clearInterval(this.timer);
  }
}

export interface SettlementStats {
  orders: number;
  settled: number;
  unsettled: number;
  /** Settled orders per second: count / (last settlement − first payment sent). */
  throughput: number;
  latency: ReturnType<LatencyHistogram['summary']>;
  byPath: Record<string, number>;
  byStatus: Record<string, number>;
}

export function summarize(orders: number, firstSentAt: number, settlements: Settlement[]): SettlementStats {
  const histogram = new LatencyHistogram();
  const byPath: Record<string, number> = {};
  const byStatus: Record<string, number> = {};
  let last = firstSentAt;
  for (const s of settlements) {
    histogram.recordMs(s.latencyMs);
    byPath[s.settledBy ?? '-'] = (byPath[s.settledBy ?? '-'] ?? 0) + 1;
    byStatus[s.status] = (byStatus[s.status] ?? 0) + 1;
    last = Math.max(last, s.settledAt);
  }
  const seconds = (last - firstSentAt) / 1000;
  return {
    orders,
    settled: settlements.length,
    unsettled: orders - settlements.length,
    throughput: seconds > 0 ? Math.round((settlements.length / seconds) * 10) / 10 : 0,
    latency: histogram.summary(),
    byPath,
    byStatus,
  };
}

/** Pure helpers for the fallback polling ladder; no workflow APIs so they can be unit-tested anywhere. */

export interface PollLadder {
  /** Delays before each check, e.g. 3s, 30s, 60s, 120s, 180s, 300s. */
  stepsMs: number[];
  /** Delay between checks once the steps are used up. */
  repeatMs: number;
}

/** Delay before check number `step` (0-based). */
export function ladderDelay(ladder: PollLadder, step: number): number {
  return ladder.stepsMs[step] ?? ladder.repeatMs;
}

/** 3000 → "3s", 90000 → "1m30s", 1800000 → "30m": short enough for a Web UI summary line. */
export function formatDuration(ms: number): string {
  const totalSeconds = Math.max(0, Math.round(ms / 1000));
  const h = Math.floor(totalSeconds / 3600);
  const m = Math.floor((totalSeconds % 3600) / 60);
  const s = totalSeconds % 60;
  const parts = [h ? `${h}h` : '', m ? `${m}m` : '', s ? `${s}s` : ''].filter(Boolean);
  return parts.length ? parts.join('') : `${ms}ms`;
}

/** The merchant notification ladders: the waits after each failed attempt, in ms. */
export const DELIVERY_LADDERS = {
  /** 3s, 30s, 60s, 120s, 180s, 300s: seven attempts in all, the last ~11.5 minutes after the first. */
  stepwise: [3_000, 30_000, 60_000, 120_000, 180_000, 300_000],
  /** 5·(2^n−1) s after failed attempt n: 5s, 15s, 35s, 75s: five attempts in all. */
  exponential: [1, 2, 3, 4].map((n) => 5_000 * (2 ** n - 1)),
} as const satisfies Record<string, readonly number[]>;

/**
 * The longest wait a merchant's Retry-After can buy: twice the ladder's longest step (stepwise 10 min,
 * exponential 150 s). Longer asks (a year, a number no date can hold) wait this long.
 */
export function retryAfterCeiling(gaps: readonly number[]): number {
  return 2 * Math.max(0, ...gaps);
}

/**
 * How long a delivery on this ladder takes at most when nothing else delays it: every wait, and every
 * attempt running to its timeout. A PENDING event older than this is stuck (`notifications list
 * --stuck`, the payrecon_merchant_notifications_stuck gauge).
 */
export function deliverySpanMs(gaps: readonly number[], attemptTimeoutMs: number): number {
  return gaps.reduce((sum, gap) => sum + gap, 0) + (gaps.length + 1) * attemptTimeoutMs;
}

/**
 * An open-loop load generator: arrival i is launched at start + i/rate whether or not earlier ones have
 * finished (a closed loop would slow down with the system and hide its latency). `maxInFlight` only
 * guards the generator against a system that stopped answering.
 */
export interface OpenLoopResult {
  launched: number;
  failed: number;
  errors: string[];
  /** Launches more than 50 ms behind schedule (the generator itself could not keep up). */
  lateLaunches: number;
  startedAt: number;
  /** When the last arrival was launched. */
  launchedUntil: number;
}

export async function openLoop(
  rate: number,
  durationMs: number,
  arrival: (index: number) => Promise<void>,
  options: { maxInFlight?: number } = {},
): Promise<OpenLoopResult> {
  const total = Math.max(1, Math.round((rate * durationMs) / 1000));
  const maxInFlight = options.maxInFlight ?? 5_000;
  const inFlight = new Set<Promise<void>>();
  const result: OpenLoopResult = {
    launched: 0,
    failed: 0,
    errors: [],
    lateLaunches: 0,
    startedAt: Date.now(),
    launchedUntil: 0,
  };
  for (let i = 0; i < total; i++) {
    const due = result.startedAt + (i * 1000) / rate;
    const wait = due - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    else if (wait < -50) result.lateLaunches++;
    while (inFlight.size >= maxInFlight) await Promise.race(inFlight);
    const work = arrival(i).catch((error: unknown) => {
      result.failed++;
      if (result.errors.length < 5)
        result.errors.push(error instanceof Error ? error.message : String(error));
    });
    inFlight.add(work);
    work.finally(() => inFlight.delete(work));
    result.launched++;
  }
  result.launchedUntil = Date.now();
  await Promise.all(inFlight);
  return result;
}

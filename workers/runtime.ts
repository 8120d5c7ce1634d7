import { DefaultLogger, type LogLevel, Runtime } from '@temporalio/worker';
import { createMetrics, type PayreconMetrics } from '../src/platform/metrics';

let metrics: PayreconMetrics | undefined;

/**
 * Configures the Temporal runtime of this process once: SDK logs at `level` (worker state changes are
 * INFO noise in tests) and, given an address, a Prometheus endpoint serving the SDK's metrics and
 * payrecon's own counters. Must run before the first worker or native connection is created.
 */
export function installWorkerRuntime(level: LogLevel = 'WARN', metricsAddress?: string): PayreconMetrics {
  if (metrics) return metrics;
  const runtime = Runtime.install({
    logger: new DefaultLogger(level),
    ...(metricsAddress
      ? {
          telemetryOptions: {
            metrics: { prometheus: { bindAddress: metricsAddress, countersTotalSuffix: true } },
          },
        }
      : {}),
  });
  metrics = createMetrics(runtime.metricMeter);
  return metrics;
}

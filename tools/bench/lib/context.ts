import type { Client } from '@temporalio/client';
import type { Database, Sql } from '../../../src/db/client';
import type { Config } from '../../../src/platform/config';
import type { SimulatorClient } from '../../simulator/client';
import type { SettlementWatcher } from './paid-watch';

/** What every phase of a bench run shares. */
export interface BenchContext {
  /** payrecon's configuration for this run (bench database, prefix and task queue). */
  config: Config;
  db: Database;
  sql: Sql;
  temporal: Client;
  simulator: SimulatorClient;
  /** The simulator's process, for the CPU a design's orders cost it. */
  simulatorPid?: number;
  watcher: SettlementWatcher;
  log: (line: string) => void;
}

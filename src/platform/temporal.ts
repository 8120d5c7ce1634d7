import { Client, Connection } from '@temporalio/client';
import type { Config } from './config';

/** A Temporal client; a server that is down is named in the error. */
export async function connectTemporal(config: Pick<Config, 'TEMPORAL_ADDRESS' | 'TEMPORAL_NAMESPACE'>) {
  let connection: Connection;
  try {
    connection = await Connection.connect({ address: config.TEMPORAL_ADDRESS, connectTimeout: '5s' });
  } catch (error) {
    throw new Error(
      `Temporal server is not reachable at ${config.TEMPORAL_ADDRESS} (start it with: npm run temporal:start): ${(error as Error).message}`,
    );
  }
  return new Client({ connection, namespace: config.TEMPORAL_NAMESPACE });
}

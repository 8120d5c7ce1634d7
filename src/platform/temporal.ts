import { readFileSync } from 'node:fs';
import { Client, Connection, type TLSConfig } from '@temporalio/client';
import { type Config, ConfigError } from './config';

/** The settings that say how to reach the Temporal frontend; the TLS ones are optional (a local server). */
export type TemporalConnectionConfig = Pick<Config, 'TEMPORAL_ADDRESS'> &
  Partial<
    Pick<
      Config,
      'TEMPORAL_TLS_CERT_PATH' | 'TEMPORAL_TLS_KEY_PATH' | 'TEMPORAL_TLS_CA_PATH' | 'TEMPORAL_API_KEY'
    >
  >;

/**
 * Address, TLS and API key for both the client's Connection and the worker's NativeConnection, so the
 * two always reach the server the same way. No TLS setting: plain gRPC (the local dev server).
 */
export function temporalConnectionOptions(config: TemporalConnectionConfig): {
  address: string;
  tls?: TLSConfig;
  apiKey?: string;
} {
  const read = (name: keyof TemporalConnectionConfig, path: string | undefined) => {
    if (!path) return undefined;
    try {
      return readFileSync(path);
    } catch (error) {
      throw new ConfigError(`${name}: cannot read ${path}: ${(error as Error).message}`);
    }
  };
  const crt = read('TEMPORAL_TLS_CERT_PATH', config.TEMPORAL_TLS_CERT_PATH);
  const key = read('TEMPORAL_TLS_KEY_PATH', config.TEMPORAL_TLS_KEY_PATH);
  const ca = read('TEMPORAL_TLS_CA_PATH', config.TEMPORAL_TLS_CA_PATH);
  const tlsWanted = Boolean(crt || key || ca || config.TEMPORAL_API_KEY);
  return {
    address: config.TEMPORAL_ADDRESS,
    ...(tlsWanted
      ? {
          tls: {
            ...(crt && key ? { clientCertPair: { crt, key } } : {}),
            ...(ca ? { serverRootCACertificate: ca } : {}),
          },
        }
      : {}),
    // An API key travels as a bearer token: only ever over TLS (set above).
    ...(config.TEMPORAL_API_KEY ? { apiKey: config.TEMPORAL_API_KEY } : {}),
  };
}

/** A Temporal client; a server that is down is named in the error. */
export async function connectTemporal(config: TemporalConnectionConfig & Pick<Config, 'TEMPORAL_NAMESPACE'>) {
  let connection: Connection;
  try {
    connection = await Connection.connect({ ...temporalConnectionOptions(config), connectTimeout: '5s' });
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw new Error(
      `Temporal server is not reachable at ${config.TEMPORAL_ADDRESS} (start it with: npm run temporal:start): ${(error as Error).message}`,
    );
  }
  return new Client({ connection, namespace: config.TEMPORAL_NAMESPACE });
}

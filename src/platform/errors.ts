/** The services payrecon depends on, as an error names them. */
export type ServiceName = 'PostgreSQL' | 'Temporal' | 'RabbitMQ' | 'payment provider';

/**
 * A call to a service failed (down, timed out, refused): the same call may work later. Carries the
 * service's name so callers decide by type (retry, name it to the operator), never by message text.
 */
export class ServiceCallError extends Error {
  override name = 'ServiceCallError';
  constructor(
    readonly service: ServiceName,
    override readonly cause: unknown,
  ) {
    super(`${service} call failed: ${cause instanceof Error ? cause.message : String(cause)}`);
  }
}

/** Runs `call` against `service`; any failure becomes a ServiceCallError naming it. */
export async function calling<T>(service: ServiceName, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw error instanceof ServiceCallError ? error : new ServiceCallError(service, error);
  }
}

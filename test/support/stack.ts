import { randomUUID } from 'node:crypto';
import net from 'node:net';
import { Client, Connection, defaultGrpcRetryOptions, makeGrpcRetryInterceptor } from '@temporalio/client';
import type { ChannelModel, ConfirmChannel, GetMessage } from 'amqplib';
import { createDatabase } from '../../src/db/client';
import { connectAny } from '../../src/mq/connect';
import { type PaymentNoticeBody, SIGNATURE_HEADER, signBody } from '../../src/mq/notification';
import { declareTopology, TRADE_PAID_ROUTING_KEY, topologyFor } from '../../src/mq/topology';
import { type CreateOrderRequest, createOrder } from '../../src/order/start';
import type { Config } from '../../src/platform/config';
import { createLogger } from '../../src/platform/logger';
import { connectTemporal } from '../../src/platform/temporal';
import type { PaymentGateway } from '../../src/provider/gateway';
import { HttpPaymentGateway } from '../../src/provider/http';
import type { PaymentGateways } from '../../src/provider/select';
import {
  type RunningSimulator,
  type StartSimulatorOptions,
  startSimulator,
} from '../../tools/simulator/server';
import { type PaymentConsumer, startPaymentConsumer } from '../../workers/consumer';
import { createOrderWorker } from '../../workers/worker';

export function paidNotification(
  order: { id: string; amount: number; currency: string },
  overrides: Partial<PaymentNoticeBody> = {},
): PaymentNoticeBody {
  return {
    version: 1,
    messageId: randomUUID(),
    orderId: order.id,
    tradeNo: `T${Date.now()}${Math.floor(Math.random() * 1e6)}`,
    status: 'TRADE_SUCCESS',
    amount: order.amount,
    currency: order.currency,
    paidAt: new Date().toISOString(),
    ...overrides,
  };
}

export interface StackOptions {
  /** One gateway for every order, or a gateway per provider (createPaymentGateways). */
  gateway?: PaymentGateway | PaymentGateways;
  /** Start the stack's own consumer (default true). More can be started with `startConsumer`. */
  consumer?: boolean;
  /**
   * Start the payment simulator in-process on a free port; the worker's gateway (PROVIDER_URL of the
   * returned config) then points at it. `true` for the defaults, or options of startSimulator.
   */
  simulator?: boolean | Omit<StartSimulatorOptions, 'config'>;
}

/**
 * The real service in this process: a Temporal worker on the dev server, the RabbitMQ consumer, a
 * Postgres pool, and a confirm channel to publish notifications the way the payment service does.
 */
export async function startStack(baseConfig: Config, options: StackOptions = {}) {
  let simulator: RunningSimulator | null = null;
  let config = baseConfig;
  if (options.simulator) {
    const simulatorOptions = options.simulator === true ? {} : options.simulator;
    simulator = await startSimulator({ port: 0, ...simulatorOptions, config: baseConfig });
    config = { ...baseConfig, PROVIDER_URL: simulator.url };
  }
  const database = createDatabase(config.DATABASE_URL, { max: 5 });
  const temporal = await connectTemporal(config);
  const { worker, run } = await createOrderWorker({ config, gateway: options.gateway });
  const workerRun = run();
  const topology = topologyFor(config.AMQP_PREFIX, config.CONSUMER_RETRY_DELAY);
  const consumers = new Set<PaymentConsumer>();

  /** A consumer on this stack's queue; `temporal` replaces the stack's client (e.g. one behind a TcpProxy). */
  const startConsumer = (
    overrides: { temporal?: Client; config?: Partial<Config>; name?: string } = {},
  ): PaymentConsumer => {
    const consumerConfig = { ...config, ...overrides.config };
    const consumer = startPaymentConsumer({
      config: consumerConfig,
      db: database.db,
      temporal: overrides.temporal ?? temporal,
      log: createLogger(overrides.name ?? 'test-consumer', consumerConfig.LOG_LEVEL),
    });
    consumers.add(consumer);
    const close = consumer.close.bind(consumer);
    // Closing twice (a test, then stop()) must be harmless.
    let closing: Promise<void> | undefined;
    consumer.close = () => {
      closing ??= close().finally(() => consumers.delete(consumer));
      return closing;
    };
    return consumer;
  };

  const consumer = options.consumer === false ? null : startConsumer();
  await consumer?.ready;

  // A plain amqplib confirm channel for publishing and inspecting queues. It reconnects on next use
  // after the broker closed it (a broker restart), instead of crashing on an unheard 'error' event.
  type Raw = { connection: ChannelModel; channel: ConfirmChannel };
  let raw: { ready: Promise<Raw> } | null = null;
  const openRaw = async (forget: () => void): Promise<Raw> => {
    // The first node of the list that answers (AMQP_URL may name every node of a cluster).
    const connection = await connectAny(config.AMQP_URL);
    connection.on('error', () => {});
    connection.on('close', forget);
    const channel = await connection.createConfirmChannel();
    channel.on('error', () => {});
    channel.on('close', forget);
    await declareTopology(channel, topology, { sideChannel: () => connection.createChannel() });
    return { connection, channel };
  };
  const rawChannel = async (): Promise<ConfirmChannel> => {
    if (!raw) {
      const entry: { ready: Promise<Raw> } = {
        ready: openRaw(() => {
          if (raw === entry) raw = null;
        }),
      };
      raw = entry;
    }
    const entry = raw;
    try {
      return (await entry.ready).channel;
    } catch (error) {
      if (raw === entry) raw = null;
      throw error;
    }
  };
  await rawChannel();

  return {
    config,
    topology,
    db: database.db,
    sql: database.sql,
    temporal,
    consumer,
    worker,
    /** The in-process payment simulator, when started with `simulator`. */
    simulator,
    startConsumer,
    /**
     * Publishes a notification signed with the shared secret (or a wrong one, or none), with any extra
     * headers, waiting for the broker's confirm.
     */
    async publish(
      notification: PaymentNoticeBody | string | Buffer,
      opts: {
        secret?: string;
        messageId?: string;
        unsigned?: boolean;
        headers?: Record<string, unknown>;
        routingKey?: string;
      } = {},
    ) {
      const body = Buffer.isBuffer(notification)
        ? notification
        : Buffer.from(typeof notification === 'string' ? notification : JSON.stringify(notification));
      const headers = {
        ...opts.headers,
        ...(opts.unsigned
          ? {}
          : { [SIGNATURE_HEADER]: signBody(body, opts.secret ?? config.NOTIFY_HMAC_SECRET) }),
      };
      const messageId =
        opts.messageId ??
        (typeof notification === 'string' || Buffer.isBuffer(notification)
          ? randomUUID()
          : notification.messageId);
      const channel = await rawChannel();
      channel.publish(topology.paymentExchange, opts.routingKey ?? TRADE_PAID_ROUTING_KEY, body, {
        persistent: true,
        contentType: 'application/json',
        messageId,
        headers,
      });
      await channel.waitForConfirms();
    },
    /** Takes every message currently in the parking queue (they are acked: gone after this). */
    async drainParking(): Promise<GetMessage[]> {
      const channel = await rawChannel();
      const messages: GetMessage[] = [];
      for (;;) {
        const message = await channel.get(topology.parkingQueue, { noAck: true });
        if (!message) return messages;
        messages.push(message);
      }
    },
    /** Messages ready in a queue (not counting those delivered and not yet acked). */
    async queueDepth(queue: string): Promise<number> {
      const channel = await rawChannel();
      return (await channel.checkQueue(queue)).messageCount;
    },
    async stop() {
      await Promise.allSettled([...consumers].map((c) => c.close()));
      worker.shutdown();
      await workerRun;
      await simulator?.close();
      const opened = raw;
      raw = null;
      if (opened) await (await opened.ready.catch(() => null))?.connection.close().catch(() => {});
      await temporal.connection.close();
      await database.close();
    },
  };
}

export type Stack = Awaited<ReturnType<typeof startStack>>;

/** An order created as a shop does it on a stack with the simulator: its trade opened through payrecon's gateway. */
export function createOrderWithTrade(stack: Stack, request: CreateOrderRequest) {
  return createOrder(
    {
      db: stack.db,
      client: stack.temporal,
      config: stack.config,
      gateway: new HttpPaymentGateway({ baseUrl: stack.config.PROVIDER_URL }),
    },
    {
      currency: 'CNY',
      payWithinMs: 3_600_000,
      pollLadder: { stepsMs: [3_600_000], repeatMs: 3_600_000 },
      ...request,
    },
  );
}

/**
 * A TCP proxy in front of a server (e.g. the Temporal dev server) that a test can take down and bring
 * back: `down()` stops listening and cuts every connection (clients then get ECONNREFUSED), `up()`
 * listens again on the same port. `latencyMs` delays every chunk in both directions, order kept.
 */
export class TcpProxy {
  latencyMs = 0;
  private server: net.Server | null = null;
  private readonly sockets = new Set<net.Socket>();

  private constructor(
    private readonly target: { host: string; port: number },
    public port: number,
  ) {}

  /** Listens on a free port of 127.0.0.1; `up: false` reserves the port and starts down. */
  static async start(targetAddress: string, options: { up?: boolean } = {}): Promise<TcpProxy> {
    const [host, port] = splitAddress(targetAddress);
    const proxy = new TcpProxy({ host, port }, 0);
    await proxy.up();
    if (options.up === false) await proxy.down();
    return proxy;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  get isUp(): boolean {
    return this.server !== null;
  }

  async up(): Promise<void> {
    if (this.server) return;
    const server = net.createServer((client) => this.pipe(client));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.port = (server.address() as net.AddressInfo).port;
    this.server = server;
  }

  async down(): Promise<void> {
    const server = this.server;
    this.server = null;
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  close(): Promise<void> {
    return this.down();
  }

  private pipe(client: net.Socket): void {
    const upstream = net.connect(this.target.port, this.target.host);
    for (const socket of [client, upstream]) {
      this.sockets.add(socket);
      socket.on('error', () => {});
      socket.on('close', () => {
        this.sockets.delete(socket);
        client.destroy();
        upstream.destroy();
      });
    }
    this.forward(client, upstream);
    this.forward(upstream, client);
  }

  private forward(from: net.Socket, to: net.Socket): void {
    const queue: { at: number; chunk: Buffer }[] = [];
    let scheduled = false;
    let ended = false;
    const flush = () => {
      scheduled = false;
      while (queue.length > 0 && (queue[0]?.at ?? 0) <= Date.now()) {
        const next = queue.shift();
        if (next && !to.destroyed) to.write(next.chunk);
      }
      const head = queue[0];
      if (head) {
        scheduled = true;
        setTimeout(flush, Math.max(0, head.at - Date.now()));
      } else if (ended) {
        to.end();
      }
    };
    from.on('data', (chunk: Buffer) => {
      if (this.latencyMs <= 0 && queue.length === 0) {
        to.write(chunk);
        return;
      }
      queue.push({ at: Date.now() + this.latencyMs, chunk });
      if (!scheduled) {
        scheduled = true;
        setTimeout(flush, this.latencyMs);
      }
    });
    from.on('end', () => {
      ended = true;
      if (queue.length === 0) to.end();
    });
  }
}

function splitAddress(address: string): [string, number] {
  const at = address.lastIndexOf(':');
  return [address.slice(0, at), Number(address.slice(at + 1))];
}

/**
 * A lazy Temporal client (no connection until the first call, like workers/consumer.ts's main) that
 * fails fast while its server is unreachable: `grpcAttempts` tries per call instead of the SDK's ten
 * over about twenty seconds, and gRPC reconnect backoff capped at half a second.
 */
export function lazyTemporalClient(
  config: Pick<Config, 'TEMPORAL_NAMESPACE'>,
  address: string,
  options: { grpcAttempts?: number } = {},
): Client {
  const connection = Connection.lazy({
    address,
    interceptors: [
      makeGrpcRetryInterceptor(defaultGrpcRetryOptions({ maxAttempts: options.grpcAttempts ?? 2 })),
    ],
    channelArgs: {
      'grpc.initial_reconnect_backoff_ms': 100,
      'grpc.max_reconnect_backoff_ms': 500,
    },
  });
  return new Client({ connection, namespace: config.TEMPORAL_NAMESPACE });
}

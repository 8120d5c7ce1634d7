import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import type { CheckResult } from './checks';

/**
 * The chaos run's RabbitMQ cluster (`--cluster`): three local nodes from scripts/rabbitmq-cluster.sh,
 * a running one used as it is, otherwise started here (and stopped again by whoever started it). By
 * default a cluster of its own (nodes payrecon-chaos-rmq<i>, AMQP 5711-5713, data
 * .run/rabbitmq-cluster-chaos/), so the cluster test's `start --fresh` / `stop` of the script's default
 * cluster cannot pull it away mid-run; CHAOS_CLUSTER=shared uses the script's default cluster
 * (payrecon-rmq<i>, 5701-5703, .rabbitmq-cluster/) instead.
 */

const ROOT = path.resolve(__dirname, '..', '..');
const SCRIPT = path.join(ROOT, 'scripts', 'rabbitmq-cluster.sh');
const run = promisify(execFile);

export const CLUSTER_NODES = 3;

export interface ClusterSpec {
  which: 'own' | 'shared';
  nodePrefix: string;
  /** The script's state directory (RABBITMQ_CLUSTER_DIR). */
  dir: string;
  basePort: number;
}

export function clusterSpec(env: NodeJS.ProcessEnv = process.env): ClusterSpec {
  const which = env.CHAOS_CLUSTER || 'own';
  if (which === 'shared')
    return { which, nodePrefix: 'payrecon-rmq', dir: path.join(ROOT, '.rabbitmq-cluster'), basePort: 5700 };
  if (which !== 'own') throw new Error(`CHAOS_CLUSTER must be "own" or "shared", got "${which}"`);
  return {
    which,
    nodePrefix: 'payrecon-chaos-rmq',
    dir: path.join(ROOT, '.run', 'rabbitmq-cluster-chaos'),
    basePort: 5710,
  };
}

/** Where a queue of the prefix lives: the leader of a quorum queue, the home node of a classic one. */
export interface ClusterQueue {
  name: string;
  type: string;
  /** Node number (1..3); null while it has none (a classic queue whose node is down). */
  node: number | null;
  messages: number | null;
  online: number[];
}

export class ChaosCluster {
  /** Nodes this driver has stopped and not yet started again. */
  readonly down = new Set<number>();
  /** No node ran when ensure() was called, so this run starts the cluster and should stop it (set before the start, so a failed start is stopped too). */
  startedHere = false;

  constructor(readonly spec: ClusterSpec) {}

  private env(): NodeJS.ProcessEnv {
    return {
      ...process.env,
      RABBITMQ_CLUSTER_DIR: this.spec.dir,
      RABBITMQ_CLUSTER_NODE_PREFIX: this.spec.nodePrefix,
    };
  }

  /** The script; a failure throws with what it printed. `status` exits 3 when a node is down: stdout then. */
  async script(args: string[], options: { okCodes?: number[] } = {}): Promise<string> {
    try {
      const { stdout } = await run('bash', [SCRIPT, ...args], { env: this.env(), timeout: 240_000 });
      return stdout;
    } catch (error) {
      const { code, stdout, stderr } = error as { code?: number; stdout?: string; stderr?: string };
      if (typeof code === 'number' && options.okCodes?.includes(code)) return stdout ?? '';
      throw new Error(
        `scripts/rabbitmq-cluster.sh ${args.join(' ')} failed: ${(error as Error).message.split('\n')[0]}\n${stdout ?? ''}${stderr ?? ''}`.trim(),
      );
    }
  }

  nodeName(index: number): string {
    return `${this.spec.nodePrefix}${index}@localhost`;
  }

  private nodeOf(text: string): number | null {
    const match = new RegExp(`${this.spec.nodePrefix}(\\d+)@`).exec(text);
    return match ? Number(match[1]) : null;
  }

  /** Node numbers running now (the script's status: one line per node). */
  async running(): Promise<number[]> {
    const out = await this.script(['status'], { okCodes: [3] });
    return out
      .split('\n')
      .filter((line) => / running /.test(line))
      .map((line) => this.nodeOf(line))
      .filter((n): n is number => n !== null);
  }

  /**
   * A running cluster is used as it is; otherwise it is started (nodes missing from a partly running
   * one are started and joined). `startedHere`: no node ran before, so the caller stops it at the end.
   */
  async ensure(log: (line: string) => void): Promise<{ urls: string; startedHere: boolean }> {
    const before = await this.running();
    this.startedHere = before.length === 0;
    if (before.length < CLUSTER_NODES) {
      log(
        before.length === 0
          ? `starting a ${CLUSTER_NODES}-node RabbitMQ cluster (${this.spec.nodePrefix}1..${CLUSTER_NODES}, data ${path.relative(process.cwd(), this.spec.dir)})`
          : `RabbitMQ cluster: nodes ${before.join(', ')} run; starting the others (it is left running afterwards)`,
      );
      await this.script([
        'start',
        '--nodes',
        String(CLUSTER_NODES),
        '--base-port',
        String(this.spec.basePort),
      ]);
    } else {
      log(`using the running RabbitMQ cluster ${this.spec.nodePrefix}1..${CLUSTER_NODES}`);
    }
    return { urls: (await this.script(['urls'])).trim(), startedHere: this.startedHere };
  }

  async stop(): Promise<void> {
    await this.script(['stop']);
  }

  /** A running node to ask, other than those stopped. */
  private via(): number {
    for (let i = 1; i <= CLUSTER_NODES; i++) if (!this.down.has(i)) return i;
    throw new Error('every node of the cluster is down');
  }

  /**
   * The prefix's queues as the cluster sees them. Classic queues have no leader: the node is in the
   * queue process id of rabbitmqctl's table output (`<payrecon-rmq1@localhost.1.2.3>`).
   */
  async queues(prefix: string): Promise<ClusterQueue[]> {
    const via = String(this.via());
    const raw = await this.script([
      'ctl',
      via,
      '-q',
      'list_queues',
      'name',
      'type',
      'leader',
      'messages',
      'online',
      '--formatter',
      'json',
    ]);
    const rows = JSON.parse(raw) as {
      name: string;
      type: string;
      leader: string;
      messages: number | '' | null;
      online: string[] | '';
    }[];
    const pids = await this.script(['ctl', via, '-q', 'list_queues', 'name', 'pid', '--no-table-headers']);
    const pidNode = new Map(
      pids
        .split('\n')
        .map((line) => line.split('\t'))
        .map(([name, pid]) => [name ?? '', this.nodeOf(pid ?? '')] as const),
    );
    return rows
      .filter((r) => r.name.startsWith(`${prefix}.`))
      .map((r) => ({
        name: r.name,
        type: r.type,
        node: r.type === 'quorum' ? this.nodeOf(r.leader) : (pidNode.get(r.name) ?? null),
        messages: typeof r.messages === 'number' ? r.messages : null,
        online: (Array.isArray(r.online) ? r.online : [])
          .map((n) => this.nodeOf(n))
          .filter((n): n is number => n !== null)
          .sort(),
      }))
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  async queue(prefix: string, name: string): Promise<ClusterQueue> {
    const row = (await this.queues(prefix)).find((q) => q.name === name);
    if (!row) throw new Error(`queue ${name} is not on the cluster`);
    return row;
  }

  async stopNode(index: number): Promise<void> {
    this.down.add(index);
    await this.script(['stop-node', String(index)]);
  }

  async startNode(index: number): Promise<void> {
    await this.script(['start-node', String(index)]);
    this.down.delete(index);
  }

  /** Waits until `until` holds for the prefix's queues; resolves with the last listing either way. */
  async waitFor(
    prefix: string,
    until: (queues: ClusterQueue[]) => boolean,
    timeoutMs: number,
  ): Promise<{ ok: boolean; queues: ClusterQueue[] }> {
    const deadline = Date.now() + timeoutMs;
    let queues: ClusterQueue[] = [];
    for (;;) {
      try {
        queues = await this.queues(prefix);
        if (until(queues)) return { ok: true, queues };
      } catch {
        // a node is still leaving or joining: ask again
      }
      if (Date.now() > deadline) return { ok: false, queues };
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
}

/** Every quorum queue of the listing has a member online on every node. */
export const allMembersOnline = (queues: ClusterQueue[]) =>
  queues.length > 0 &&
  queues.filter((q) => q.type === 'quorum').every((q) => q.online.length === CLUSTER_NODES);

/**
 * The queues across the cluster at the end, as rabbitmqctl sees them: every node running, every
 * quorum member online, the work and retry queues empty, and the parking queue (on its home node)
 * holding exactly the messages the driver read from it over AMQP.
 */
export function checkClusterQueues(
  listing: { running: number[]; queues: ClusterQueue[] },
  names: { work: string; retry: string; parking: string },
  parkedRead: number,
): CheckResult {
  const violations: string[] = [];
  if (listing.running.length !== CLUSTER_NODES)
    violations.push(`${listing.running.length} of ${CLUSTER_NODES} nodes running at the end`);
  const byName = new Map(listing.queues.map((q) => [q.name, q]));
  for (const [role, name] of Object.entries(names)) {
    const queue = byName.get(name);
    if (!queue) {
      violations.push(`${role} queue ${name} is not on the cluster`);
      continue;
    }
    if (queue.type === 'quorum' && queue.online.length !== CLUSTER_NODES)
      violations.push(`${name}: members online on nodes ${queue.online.join(', ')} only`);
    if (queue.node === null) violations.push(`${name}: no leader / home node`);
    const expected = role === 'parking' ? parkedRead : 0;
    if (queue.messages !== expected)
      violations.push(
        `${name}: ${queue.messages ?? 'unknown'} messages on the cluster, expected ${expected}`,
      );
  }
  return {
    name: 'the cluster holds what the run read (rabbitmqctl)',
    checked: listing.queues.length,
    violations,
  };
}

import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { afterAll, describe, expect, it } from 'vitest';
import { startDedicatedDevServer } from '../tools/bench/lib/dev-server';

// A fresh clone has no .run/: `npm run bench -- --dedicated-server` used to die on the log stream's ENOENT.
describe('the bench dedicated dev server', () => {
  const parent = mkdtempSync(path.join(os.tmpdir(), 'payrecon-bench-logs-'));
  afterAll(() => rmSync(parent, { recursive: true, force: true }));

  it('starts with a log folder that does not exist yet, and answers', { timeout: 60_000 }, async () => {
    const logDir = path.join(parent, 'not-yet', '.run');
    const server = await startDedicatedDevServer([], logDir);
    try {
      const connection = await Connection.connect({ address: server.address });
      const info = await connection.workflowService.getSystemInfo({});
      expect(info.serverVersion).toMatch(/\d+\.\d+/);
      await connection.close();
    } finally {
      await server.stop();
    }
    expect(existsSync(path.join(logDir, 'bench-temporal.log'))).toBe(true);
    expect(readFileSync(path.join(logDir, 'bench-temporal.log'), 'utf8')).not.toMatch(/ENOENT/);
  });
});

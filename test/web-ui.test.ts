/**
 * The Temporal Web UI as an operator uses it (SPEC "Who uses it"): after a demo run, order workflows are
 * found by the OrderId, PaymentStatus and SettledBy search attributes typed into the UI's search box, and
 * an order's page shows its amount and currency and the timers' and activities' summaries as plain text.
 *
 * The "demo run" is a miniature of `npm run demo`: three orders paid over RabbitMQ and one whose
 * notification reports the wrong amount (held for review), settled for real by the worker and consumer of
 * the test stack on the dev server. The full demo batch takes minutes and is too slow for CI.
 *
 * Playwright (playwright-core, no bundled browser) drives Debian's Chromium, which scripts/setup.sh
 * installs; screenshots land in test-results/web-ui/ (git-ignored).
 */
import { existsSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { type Browser, type BrowserContext, chromium, type Locator, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { orderWorkflowId } from '../src/domain';
import { createOrder } from '../src/order/start';
import { workflowUiLink } from '../src/platform/config';
import { HttpPaymentGateway } from '../src/provider/http';
import { SimulatorClient } from '../tools/simulator/client';
import { orderStateQuery } from '../workflows/order';
import { deleteTopology, eventually, testConfig } from './support/env';
import { paidNotification, type Stack, startStack } from './support/stack';

const CHROMIUM = '/usr/bin/chromium';
// Without the background-networking flags Chromium's own update and sync traffic gets connections refused here.
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const SHOTS = path.join(__dirname, '..', 'test-results', 'web-ui');
/** Every wait on the UI: generous, because CI machines are slow and the visibility store is eventually consistent. */
const UI_TIMEOUT = 30_000;

// Long ladder and deadline: nothing but the notifications can settle these orders within the test.
const noPolls = { stepsMs: [3_600_000], repeatMs: 3_600_000 };
const PAID_AMOUNTS = [12_800, 4_550, 19_900];
const REVIEW_AMOUNT = 9_900;

describe('Temporal Web UI after a demo run', () => {
  // ORDER_START_DELAY none: the pages shown include the order waiting on its ladder timer (and that
  // timer's summary), which an order started with the default delay only reaches after its first check.
  const config = testConfig('ui', { ORDER_START_DELAY: 'none' });
  const taskQueue = config.TEMPORAL_TASK_QUEUE;
  const workflowsUrl = `${config.TEMPORAL_UI_URL}/namespaces/${encodeURIComponent(config.TEMPORAL_NAMESPACE)}/workflows`;
  let stack: Stack | undefined;
  let browser: Browser | undefined;
  let context: BrowserContext | undefined;
  let page: Page;
  /** Order ids. */
  const paid: string[] = [];
  let review = '';

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(
        `${CHROMIUM} is missing: the Web UI test drives Debian's Chromium. Install it with: bash scripts/setup.sh (without PAYRECON_SKIP_BROWSER)`,
      );
    }
    const settings = await fetch(`${config.TEMPORAL_UI_URL}/api/v1/settings`).catch(
      (error) => error as Error,
    );
    if (!(settings instanceof Response) || !settings.ok) {
      throw new Error(
        `no Temporal Web UI at ${config.TEMPORAL_UI_URL} (TEMPORAL_UI_URL); the dev server serves it: bash scripts/temporal-dev.sh start (${settings instanceof Response ? `HTTP ${settings.status}` : settings.message})`,
      );
    }

    stack = await startStack(config, { simulator: true });
    const s = stack;
    const create = (amount: number, gateway?: HttpPaymentGateway) =>
      createOrder(
        { db: s.db, client: s.temporal, config: s.config, gateway },
        { amount, currency: 'CNY', payWithinMs: 2 * 3_600_000, pollLadder: noPolls },
      );
    const paidOrders = await Promise.all(PAID_AMOUNTS.map((amount) => create(amount)));
    // The order held for review has its trade opened at the provider, where the buyer pays a tenth.
    const reviewOrder = await create(
      REVIEW_AMOUNT,
      new HttpPaymentGateway({ baseUrl: s.config.PROVIDER_URL }),
    );
    await new SimulatorClient(s.config.PROVIDER_URL).pay(reviewOrder.order.id, {
      faults: { wrongAmount: REVIEW_AMOUNT / 10, drop: true },
    });
    const all = [...paidOrders, reviewOrder];
    // Like a real order, each workflow first waits on its timer; then the payment service publishes.
    for (const { workflowId } of all) {
      await eventually('the order workflow to wait on its first timer', async () => {
        const state = await s.temporal.workflow.getHandle(workflowId).query(orderStateQuery);
        return state.nextCheckAt ? state : undefined;
      });
    }
    for (const { order } of paidOrders) {
      await s.publish(paidNotification(order));
      paid.push(order.id);
    }
    await s.publish(
      paidNotification(reviewOrder.order, {
        amount: REVIEW_AMOUNT / 10,
        tradeNo: reviewOrder.trade?.tradeNo ?? 'no trade opened',
      }),
    );
    review = reviewOrder.order.id;
    const results = await Promise.all(
      all.map(({ workflowId }) => s.temporal.workflow.getHandle(workflowId).result()),
    );
    expect(results.map((r) => r.status)).toEqual(['PAID', 'PAID', 'PAID', 'NEEDS_REVIEW']);

    // The dev server's (SQLite) visibility store is eventually consistent: the UI lists what it lists.
    const listed = async (query: string) => {
      const ids: string[] = [];
      for await (const execution of s.temporal.workflow.list({ query })) ids.push(execution.workflowId);
      return ids.sort();
    };
    await eventually(
      'the visibility store to list the settled orders by their search attributes',
      async () => {
        const [paidListed, reviewListed] = await Promise.all([
          listed(`PaymentStatus="PAID" AND SettledBy="mq" AND TaskQueue="${taskQueue}"`),
          listed(`PaymentStatus="NEEDS_REVIEW" AND TaskQueue="${taskQueue}"`),
        ]);
        const ok =
          JSON.stringify(paidListed) === JSON.stringify(paid.map(orderWorkflowId).sort()) &&
          JSON.stringify(reviewListed) === JSON.stringify([orderWorkflowId(review)]);
        return ok ? true : undefined;
      },
      UI_TIMEOUT,
    );

    await rm(SHOTS, { recursive: true, force: true });
    await mkdir(SHOTS, { recursive: true });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  });

  afterAll(async () => {
    await browser?.close();
    if (stack) {
      await stack.stop();
      await deleteTopology(config);
    }
  });

  // A fresh context per test: the UI keeps view state (e.g. the raw-query toggle) in the browser's storage.
  beforeEach(async () => {
    if (!browser) throw new Error('the browser did not start (see beforeAll)');
    context = await browser.newContext({ viewport: { width: 1920, height: 1080 } });
    context.setDefaultTimeout(UI_TIMEOUT);
    page = await context.newPage();
  });
  afterEach(async () => {
    await context?.close();
  });

  /** Saves test-results/web-ui/<name>.png, first scrolling `show` (if given) to the middle of the view. */
  const screenshot = async (name: string, show?: Locator) => {
    await show?.evaluate((element) => element.scrollIntoView({ block: 'center' }));
    await page.mouse.move(0, 0); // no hover tooltips over the content
    await page.screenshot({ path: path.join(SHOTS, `${name}.png`) });
  };

  /** Types a visibility query into the workflow list's search box (the raw query input) and submits it. */
  const typeQuery = async (query: string) => {
    await page.goto(workflowsUrl);
    await page.getByTestId('toggle-manual-query').click();
    const box = page.getByRole('searchbox', { name: 'Enter a query' });
    await box.fill(query);
    await box.press('Enter');
    await page.waitForURL((url) => url.searchParams.get('query') === query);
  };

  /** Waits until the list's rows are exactly these workflow ids (order ignored), then returns them. */
  const expectRows = async (expected: string[]) => {
    const want = [...expected].sort();
    // Each row links its workflow id, run id and type; the workflow ids are the links reading order-….
    const links = page.getByTestId('workflows-summary-configurable-table-row').getByRole('link');
    let seen: string[] = [];
    await eventually(
      `the workflow list to show exactly ${want.join(', ')}`,
      async () => {
        seen = (await links.allInnerTexts())
          .map((t) => t.trim())
          .filter((t) => t.startsWith('order-'))
          .sort();
        return JSON.stringify(seen) === JSON.stringify(want) ? seen : undefined;
      },
      UI_TIMEOUT,
    ).catch((error: Error) => {
      throw new Error(`${error.message}; last seen: ${seen.join(', ') || 'no rows'}`);
    });
    // The count above the list comes from its own count request with the same query.
    await page
      .getByTestId('workflow-count')
      .filter({ hasText: new RegExp(`^${want.length}$`) })
      .waitFor();
    return seen;
  };

  it('the search box filters by PaymentStatus: only the order held for review, none of the paid ones', async () => {
    await typeQuery(`PaymentStatus="NEEDS_REVIEW" AND TaskQueue="${taskQueue}"`);
    const rows = await expectRows([orderWorkflowId(review)]);
    for (const id of paid) expect(rows).not.toContain(orderWorkflowId(id));
    await screenshot('01-search-box-needs-review');
  });

  it('a ?query= link filters by PaymentStatus and SettledBy: the three orders paid over MQ', async () => {
    const query = `PaymentStatus="PAID" AND SettledBy="mq" AND TaskQueue="${taskQueue}"`;
    await page.goto(`${workflowsUrl}?query=${encodeURIComponent(query)}`);
    const rows = await expectRows(paid.map(orderWorkflowId));
    expect(rows).not.toContain(orderWorkflowId(review));
    await screenshot('02-query-link-paid-by-mq');
  });

  it('an order found by OrderId shows its amount and currency and readable summaries', async () => {
    const workflowId = orderWorkflowId(review);
    await typeQuery(`OrderId="${review}"`);
    await expectRows([workflowId]);
    await page.getByRole('link', { name: workflowId, exact: true }).click();
    await page.waitForURL(/\/timeline$/);
    await page.getByRole('heading', { name: workflowId }).waitFor();

    // The input is JSON text, not base64 payloads: amount (minor units) and currency as written.
    await page.getByText('"amount": 9900').first().waitFor();
    await page.getByText('"currency": "CNY"').first().waitFor();
    await page.getByText('"status": "NEEDS_REVIEW"').first().waitFor();
    // The timeline labels each timer with its summary; the database writes are local activities, which
    // the Event History lists with theirs (below).
    await page.getByText('waiting for payment notice, next check in 1h').first().waitFor();
    await screenshot('03-order-timeline');

    await page.getByRole('tab', { name: /^Event History/ }).click();
    await page.waitForURL(/\/history$/);
    const timerSummary = page.getByText(/^waiting for payment notice, next check in 1h$/).first();
    for (const summary of [
      timerSummary,
      page.getByText(/^record mq notice [0-9a-f-]{36}$/).first(),
      page.getByText(/^amount mismatch: hold order for review$/).first(),
    ]) {
      await summary.waitFor();
    }
    await screenshot('04-order-event-history', timerSummary);

    await page.getByRole('tab', { name: 'Memo' }).click();
    await page.getByText('"amount": 9900').first().waitFor();
    await page.getByText('"currency": "CNY"').first().waitFor();
    await screenshot('05-order-memo');

    // The start's static summary, rendered as markdown in a sandboxed frame.
    await page.getByRole('tab', { name: 'User Metadata' }).click();
    await page
      .frameLocator('#user-metadata-summary')
      .getByText(`order ${review}: ${(REVIEW_AMOUNT / 100).toFixed(2)} CNY`)
      .waitFor();
    await screenshot('06-order-user-metadata');
  });

  it("the CLI's workflow link opens a paid order, whose history says how it was settled", async () => {
    const [orderId] = paid as [string];
    await page.goto(workflowUiLink(config, orderWorkflowId(orderId)));
    await page.getByRole('heading', { name: orderWorkflowId(orderId) }).waitFor();
    await page.getByText(`"amount": ${PAID_AMOUNTS[0]}`).first().waitFor();
    await page.getByRole('tab', { name: /^Event History/ }).click();
    // The notice recorded and the order paid in one local activity (markOrderPaidByNotice).
    const markPaid = page.getByText(/^record mq notice [0-9a-f-]{36}, mark order paid$/).first();
    await markPaid.waitFor();
    await screenshot('07-paid-order-event-history', markPaid);
  });
});

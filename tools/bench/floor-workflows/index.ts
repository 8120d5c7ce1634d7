import { condition, defineSignal, proxyActivities, setHandler } from '@temporalio/workflow';

/** The Temporal floor: the least a workflow can do on payrecon's path (one signal, one activity). */
export interface FloorActivities {
  settle(id: string): Promise<void>;
}

export const goSignal = defineSignal('go');

const { settle } = proxyActivities<FloorActivities>({ startToCloseTimeout: '10s' });

export async function floorWorkflow(id: string): Promise<void> {
  let signalled = false;
  setHandler(goSignal, () => {
    signalled = true;
  });
  await condition(() => signalled);
  await settle(id);
}

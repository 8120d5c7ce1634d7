import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';

/**
 * The workflow code a worker runs. `npm run build` compiles the shipped code to dist/ and then runs this
 * file from there (`node dist/workers/workflow-bundle.js`), which bundles the compiled workflows with the
 * SDK's bundler into dist/workflow-bundle.js: a worker started from dist/ loads that file instead of
 * running webpack at every start. From source (tsx, vitest) there is no such file next to the code, and
 * the worker bundles workflows/ itself.
 */

/** Beside the compiled workers/ folder: dist/workflow-bundle.js (from source: a path that never exists). */
export const WORKFLOW_BUNDLE_PATH = path.resolve(__dirname, '../workflow-bundle.js');
/** A folder, not require.resolve: under vitest and tsx the entry is workflows/index.ts. */
export const WORKFLOWS_PATH = path.resolve(__dirname, '../workflows');

export type WorkflowCode = { workflowBundle: { codePath: string } } | { workflowsPath: string };

/** The prebuilt bundle when there is one, else the workflows folder for the worker to bundle. */
export function workflowCode(): WorkflowCode {
  return existsSync(WORKFLOW_BUNDLE_PATH)
    ? { workflowBundle: { codePath: WORKFLOW_BUNDLE_PATH } }
    : { workflowsPath: WORKFLOWS_PATH };
}

async function main() {
  // From source it would bundle workflows/*.ts into the project root, where no worker looks for it.
  if (path.extname(__filename) !== '.js') {
    throw new Error('run the compiled file (npm run build), not the source');
  }
  const { code } = await bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH });
  await writeFile(WORKFLOW_BUNDLE_PATH, code);
  console.log(`workflow bundle written (${Math.round(code.length / 1024)} KiB)`);
}

if (require.main === module) {
  main().catch((error) => {
    console.error(`bundling the workflows failed: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  });
}

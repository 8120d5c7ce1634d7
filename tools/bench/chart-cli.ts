import { readFileSync } from 'node:fs';
import path from 'node:path';
import { type ChartInput, writeBenchChart } from './chart';

/**
 * `npm run bench:chart -- <results.json> [...]`: draws each run's chart again from its JSON alone, beside
 * it (<name>.svg and <name>.png), e.g. for a run recorded before the chart existed or changed.
 */
async function main() {
  const files = process.argv.slice(2).filter((arg) => arg !== '--');
  if (files.length === 0 || files.some((f) => f === '-h' || f === '--help')) {
    console.log('usage: npm run bench:chart -- tools/bench/results/bench-<timestamp>.json [...]');
    process.exitCode = files.length === 0 ? 2 : 0;
    return;
  }
  for (const file of files) {
    const report = JSON.parse(readFileSync(file, 'utf8')) as ChartInput;
    const written = await writeBenchChart(report, path.resolve(file));
    console.log(
      `${file}: ${path.relative(process.cwd(), written.png)}, ${path.relative(process.cwd(), written.svg)}`,
    );
  }
}

main().catch((error) => {
  console.error(`bench:chart failed: ${error instanceof Error ? error.stack : String(error)}`);
  process.exit(1);
});

import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The line between what ships and the rig: nothing in src/, workflows/, activities/ or workers/ may
 * import from tools/ (the simulator, demo, chaos, bench) or test/. Relative specifiers are resolved
 * against the importing file; `import`, `export ... from`, `import()` and `require()` all count.
 */

const ROOT = path.resolve(__dirname, '..');
const SHIPPED = ['src', 'workflows', 'activities', 'workers'];
const RIG = ['tools', 'test'];

const SPECIFIER =
  /(?:\bimport\s+(?:type\s+)?(?:[\w*{}\s,$]+?\s+from\s+)?|\bexport\s+(?:type\s+)?[\w*{}\s,$]*?\s+from\s+|\bimport\s*\(\s*|\brequire\s*\(\s*)(['"])([^'"]+)\1/g;

function typescriptFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'node_modules' ? [] : typescriptFiles(full);
    return entry.name.endsWith('.ts') ? [full] : [];
  });
}

/** The imports of one file's text that land in tools/ or test/: `[specifier, line]` pairs. */
function rigImports(file: string, text: string): { specifier: string; line: number }[] {
  const found: { specifier: string; line: number }[] = [];
  for (const match of text.matchAll(SPECIFIER)) {
    const specifier = match[2] ?? '';
    if (!specifier.startsWith('.')) continue;
    const target = path.relative(ROOT, path.resolve(path.dirname(file), specifier));
    const top = target.split(path.sep)[0] ?? '';
    if (RIG.includes(top)) {
      found.push({ specifier, line: text.slice(0, match.index).split('\n').length });
    }
  }
  return found;
}

describe('boundaries: the shipped code never imports the rig', () => {
  it('no file under src/, workflows/, activities/, workers/ imports from tools/ or test/', () => {
    const files = SHIPPED.flatMap((dir) => typescriptFiles(path.join(ROOT, dir)));
    expect(files.length).toBeGreaterThan(20);
    const violations = files.flatMap((file) =>
      rigImports(file, readFileSync(file, 'utf8')).map(
        ({ specifier, line }) => `${path.relative(ROOT, file)}:${line} imports '${specifier}'`,
      ),
    );
    expect(violations, violations.join('\n')).toEqual([]);
  });

  it('the scan sees every form of import and resolves relative paths', () => {
    const file = path.join(ROOT, 'src', 'cli', 'example.ts');
    const text = [
      "import { a } from '../../tools/simulator/client';",
      "import type { B } from '../../test/support/stack';",
      "export { c } from '../../tools/scenarios';",
      "const d = require('../../tools/net');",
      "const e = await import('../../tools/demo');",
      "import '../../tools/service';",
      "import { ok } from '../db/orders';",
      "import { alsoOk } from 'amqplib';",
      "import { tools } from './tools';",
    ].join('\n');
    expect(rigImports(file, text).map((hit) => hit.specifier)).toEqual([
      '../../tools/simulator/client',
      '../../test/support/stack',
      '../../tools/scenarios',
      '../../tools/net',
      '../../tools/demo',
      '../../tools/service',
    ]);
    expect(rigImports(file, text).map((hit) => hit.line)).toEqual([1, 2, 3, 4, 5, 6]);
  });
});

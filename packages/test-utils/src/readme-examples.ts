/**
 * Runs the TypeScript examples of a README as written, so that documentation cannot rot:
 * each ```ts block is transpiled, its `import` lines become `require` calls resolved from the
 * package under test, and top-level `await` is allowed (the block runs inside an async function).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import ts from 'typescript';

/** The ```ts code blocks of a markdown file, in order. */
export function typeScriptBlocks(markdownFile: string): string[] {
  const text = fs.readFileSync(markdownFile, 'utf8');
  return [...text.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]);
}

/**
 * Runs one example. `modules` maps import specifiers to the objects they resolve to (pass the
 * packages imported through the test's own module system, so the example shares their tfjs);
 * anything else is `require`d normally. Captured `console.log` lines are returned.
 */
export async function runExample(code: string, modules: Record<string, unknown>): Promise<string[]> {
  // Imports stay at module level; the rest runs inside an async function (top-level await).
  const importPattern = /^import\s[\s\S]*?\sfrom\s+['"][^'"]+['"];?\s*$/gm;
  const imports = (code.match(importPattern) ?? []).join('\n');
  const rest = code.replace(importPattern, '');
  const { outputText } = ts.transpileModule(`${imports}\nexport {};\n(async () => {\n${rest}\n})();`, {
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
  });
  // The async wrapper's promise is what we await: expose it instead of discarding it.
  const body = outputText.replace(/\(async \(\) => \{/, 'exports.done = (async () => {');
  const logs: string[] = [];
  const fakeConsole = { ...console, log: (...args: unknown[]) => logs.push(args.map(String).join(' ')) };
  const exports: { done?: Promise<void> } = {};
  // Other specifiers load as the example's reader would load them.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const requireFn = (name: string) => (name in modules ? modules[name] : require(name));
  new Function('require', 'exports', 'console', body)(requireFn, exports, fakeConsole);
  await exports.done;
  return logs;
}

/** The README of the package whose tests call this (the package root is above `src/`). */
export function packageReadme(testDir: string): string {
  return path.join(testDir, '..', 'README.md');
}

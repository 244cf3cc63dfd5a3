/**
 * `node dist/node-battery.js <backend...> <out.json>`: the agreement battery in Node, writing
 * `{ device, outcomes }` to out.json (Dawn prints its validation messages on stdout). Run in a
 * child process: Dawn finds its Vulkan driver through environment variables read at start.
 */
import { writeFileSync } from 'node:fs';
import { setBackend } from '@mie/core';
import { runBattery } from './run-battery';

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const out = args.pop()!;
  const backends = args as Array<'webgpu' | 'wasm'>;
  const device = await setBackend(backends[0]);
  await setBackend('cpu');
  const outcomes = await runBattery(backends, undefined, process.env.MIE_BATTERY_ONLY);
  writeFileSync(out, JSON.stringify({ device, outcomes }));
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`${(error as Error)?.stack ?? error}\n`);
    process.exit(1);
  },
);

// node node.mjs <backend> <modelUrl> <out.json>: the same checks in Node (webgpu through the
// optional webgpu package), loading the checkpoint from the URL with fetch.
import { writeFileSync } from 'node:fs';
import { runChecks } from './checks.mjs';

const [backend, modelUrl, out] = process.argv.slice(2);
const result = await runChecks(backend, modelUrl);
writeFileSync(out, JSON.stringify(result));
process.exit(0);

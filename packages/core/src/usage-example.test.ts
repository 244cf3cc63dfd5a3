import * as os from 'node:os';
import * as path from 'node:path';
import * as fs from 'node:fs';
import { runExample, typeScriptBlocks } from '../../test-utils/src/readme-examples';
import * as core from './index';

// @mie/core cannot depend on @mie/test-utils (which depends on it), so this one import is relative.
it('runs the README example as written', async () => {
  const [example] = typeScriptBlocks(path.join(__dirname, '../README.md'));
  fs.rmSync(path.join(os.tmpdir(), 'scale'), { recursive: true, force: true });
  const logs = await runExample(example, { '@mie/core': core });
  expect(logs).toEqual([`4 ${core.getDevice().backend}`]);
  expect(fs.existsSync('/tmp/scale/model.safetensors')).toBe(true);
});

// Named so that npm's packer (which always ships files named readme*) leaves this test out of the tarball.
import * as core from '@mie/core';
import { packageReadme, runExample, typeScriptBlocks } from '@mie/test-utils';
import * as g2p from './index';

// The README's first example runs as written, with '@mie/g2p-en' resolved to this package's source.
describe('README example', () => {
  beforeAll(async () => {
    await core.ready();
  });

  it('pronounces as documented and leaks no tensor', async () => {
    const [example] = typeScriptBlocks(packageReadme(__dirname));
    expect(example).toContain("from '@mie/g2p-en'");
    const before = core.tf.memory().numTensors;
    const printed = await runExample(example, { '@mie/g2p-en': g2p, '@mie/core': core });
    const model = await g2p.loadG2P();
    try {
      const [hello, world] = await model.pronounce(['hello', 'world']);
      const [beam] = await model.pronounce(['tomato'], { numBeams: 5 });
      expect(printed).toEqual([`${hello.join(' ')} | ${world.join(' ')}`, beam.join(' ')]);
    } finally {
      model.dispose();
    }
    expect(core.tf.memory().numTensors).toBe(before);
  });
});

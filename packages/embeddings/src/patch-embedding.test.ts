import { MieConfigError, setBackend, setSeed, tf } from '@mie/core';
import { runModuleTest } from '@mie/test-utils';
import { PatchEmbedding } from './index';

// Values against nn.Conv2d are checked in @mie/transformer (src/vision.test.ts, from
// scripts/fixtures/vision.py); here the battery and the options.
beforeAll(async () => {
  await setBackend('cpu');
  setSeed(2);
});

describe('PatchEmbedding', () => {
  it.each([
    ['grey', 1],
    ['RGB', 3],
  ])('runs the shared battery (%s)', async (_label, numChannels) => {
    await runModuleTest(
      () => new PatchEmbedding({ imageSize: [8, 12], patchSize: 4, numChannels, dModel: 6 }),
      () => [tf.randomUniform([2, 8, 12, numChannels], 0, 1, 'float32', 4)],
      { expectedParameterCount: 6 * numChannels * 4 * 4 + 6 },
    );
  });

  it('keeps its config, with numChannels defaulting to 3, and refuses bad options by name', () => {
    const patches = new PatchEmbedding({ imageSize: [28, 140], patchSize: 7, dModel: 64 });
    expect(patches.config).toEqual({ imageSize: [28, 140], patchSize: 7, numChannels: 3, dModel: 64 });
    expect(patches.numPatches).toBe(80);
    expect(patches.proj.weight.shape).toEqual([64, 3, 7, 7]);
    expect(Object.keys(patches.stateDict())).toEqual(['proj.weight', 'proj.bias']);
    patches.dispose();
    expect(() => new PatchEmbedding({ imageSize: [28, 140], patchSize: 0, dModel: 4 })).toThrow(/PatchEmbedding: option "patchSize" must be a positive integer/);
    expect(() => new PatchEmbedding({ imageSize: [28, 140], patchSize: 7, dModel: 4, extra: 1 } as never)).toThrow(MieConfigError);
  });
});

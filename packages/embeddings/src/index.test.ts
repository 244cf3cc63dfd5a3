import { getDevice, setBackend, tf } from '@mie/core';
import { runModuleTest } from '@mie/test-utils';
import { TinyMlp } from '@mie/test-utils/test-modules';
import { PACKAGE_NAME } from './index';

// The package is wired to the shared backend and the shared test battery: a small model from
// the battery's own modules trains on wasm and passes every check from inside this package.
describe(PACKAGE_NAME, () => {
  it('runs on the shared tfjs instance and passes the module battery', async () => {
    await setBackend('wasm');
    expect(getDevice()).toMatchObject({ backend: 'wasm', kind: 'cpu' });
    await runModuleTest(() => new TinyMlp({ inputSize: 3, hiddenSize: 4, outputSize: 2 }), () => [tf.ones([2, 3])]);
  });
});

import { setBackend } from './backend';
import { FUSED_KERNEL_BACKENDS, fusedKernelAvailable, registerFusedKernel, runFusedKernel, type FusedKernel } from './fused-kernels';
import { tf } from './tfjs';

// A toy kernel with two outputs: y = scale * x + offset (offset optional) and the row sums of x.
const KERNEL = 'MieTestAffineRowSum';
const affineRowSum: FusedKernel<{ scale: number }> = {
  kernelName: KERNEL,
  outputShapes: ({ x }) => [x, [tf.util.sizeFromShape(x.slice(0, -1))]],
  compute({ x, offset }, [y, sums], shapes, { scale }) {
    const n = shapes.x[shapes.x.length - 1];
    for (let i = 0; i < x.length; i++) y[i] = scale * x[i] + (offset === undefined ? 0 : offset[i % n]);
    for (let r = 0; r < sums.length; r++) {
      let sum = 0;
      for (let j = 0; j < n; j++) sum += x[r * n + j];
      sums[r] = sum;
    }
  },
};
registerFusedKernel(affineRowSum);

function withFusedKernels<T>(value: string | undefined, run: () => T): T {
  const saved = process.env.MIE_FUSED_KERNELS;
  if (value === undefined) delete process.env.MIE_FUSED_KERNELS;
  else process.env.MIE_FUSED_KERNELS = value;
  try {
    return run();
  } finally {
    if (saved === undefined) delete process.env.MIE_FUSED_KERNELS;
    else process.env.MIE_FUSED_KERNELS = saved;
  }
}

describe.each(FUSED_KERNEL_BACKENDS)('fused kernels on %s', (backend) => {
  beforeAll(async () => {
    await setBackend(backend);
  });

  it('registers for cpu and wasm only, and MIE_FUSED_KERNELS=0 switches it off', () => {
    expect(tf.getKernel(KERNEL, 'cpu')).toBeDefined();
    expect(tf.getKernel(KERNEL, 'wasm')).toBeDefined();
    expect(tf.getKernel(KERNEL, 'webgl')).toBeUndefined();
    expect(withFusedKernels(undefined, () => fusedKernelAvailable(KERNEL))).toBe(true);
    expect(withFusedKernels('1', () => fusedKernelAvailable(KERNEL))).toBe(true);
    expect(withFusedKernels('0', () => fusedKernelAvailable(KERNEL))).toBe(false);
    expect(fusedKernelAvailable('MieNoSuchKernel')).toBe(false);
  });

  it('is used by default only on its defaultBackends, everywhere registered under MIE_FUSED_KERNELS=all', () => {
    registerFusedKernel({ ...affineRowSum, kernelName: 'MieTestCpuOnly', defaultBackends: ['cpu'] });
    expect(tf.getKernel('MieTestCpuOnly', backend)).toBeDefined(); // registered (and testable) on both
    expect(withFusedKernels(undefined, () => fusedKernelAvailable('MieTestCpuOnly'))).toBe(backend === 'cpu');
    expect(withFusedKernels('all', () => fusedKernelAvailable('MieTestCpuOnly'))).toBe(true);
    expect(withFusedKernels('0', () => fusedKernelAvailable('MieTestCpuOnly'))).toBe(false);
  });

  it('is used by default for small inputs where defaultUpToElements says so', () => {
    registerFusedKernel({ ...affineRowSum, kernelName: 'MieTestSmallOnWasm', defaultBackends: ['cpu'], defaultUpToElements: { wasm: 100 } });
    const small = withFusedKernels(undefined, () => fusedKernelAvailable('MieTestSmallOnWasm', 100));
    const large = withFusedKernels(undefined, () => fusedKernelAvailable('MieTestSmallOnWasm', 101));
    const unsized = withFusedKernels(undefined, () => fusedKernelAvailable('MieTestSmallOnWasm'));
    expect([small, large, unsized]).toEqual(backend === 'cpu' ? [true, true, true] : [true, false, false]);
    expect(withFusedKernels('all', () => fusedKernelAvailable('MieTestSmallOnWasm', 101))).toBe(true);
    expect(withFusedKernels('0', () => fusedKernelAvailable('MieTestSmallOnWasm', 1))).toBe(false);
  });

  it('is used by default where its defaultWhen holds, and runs wasmCompute on wasm unless it declines', () => {
    const name = `MieTestAccelerated_${backend}`; // one registration per block: the first is kept
    let accelerated = false;
    let wasmCalls = 0;
    registerFusedKernel<{ scale: number }>({
      ...affineRowSum,
      kernelName: name,
      defaultBackends: ['cpu'],
      defaultWhen: { wasm: () => accelerated },
      wasmCompute(wasmBackend, { x }, [y, sums], { scale }) {
        wasmCalls++;
        if (!accelerated) return false;
        const values = wasmBackend.typedArrayFromHeap(x) as Float32Array;
        (wasmBackend.typedArrayFromHeap(y) as Float32Array).set(values.map((v) => scale * v + 1000));
        (wasmBackend.typedArrayFromHeap(sums) as Float32Array).fill(-1);
        return true;
      },
    });
    const x = tf.tensor2d([[1, 2], [3, 4]]);
    const run = () => runFusedKernel(name, { x }, { scale: 2 }).map((t) => {
      const values = Array.from(t.dataSync());
      t.dispose();
      return values;
    });
    expect(withFusedKernels(undefined, () => fusedKernelAvailable(name))).toBe(backend === 'cpu');
    expect(run()).toEqual([[2, 4, 6, 8], [3, 7]]); // declined on wasm (or cpu): compute ran
    accelerated = true;
    expect(withFusedKernels(undefined, () => fusedKernelAvailable(name))).toBe(true);
    expect(withFusedKernels('0', () => fusedKernelAvailable(name))).toBe(false);
    expect(run()).toEqual(backend === 'wasm' ? [[1002, 1004, 1006, 1008], [-1, -1]] : [[2, 4, 6, 8], [3, 7]]);
    expect(wasmCalls).toBe(backend === 'wasm' ? 2 : 0);
    x.dispose();
  });

  it('is idempotent: registering again keeps the first kernel', () => {
    const first = tf.getKernel(KERNEL, backend)!.kernelFunc;
    registerFusedKernel(affineRowSum);
    expect(tf.getKernel(KERNEL, backend)!.kernelFunc).toBe(first);
  });

  it.each([
    [[2, 3]],
    [[5, 7]],
    [[2, 3, 4]],
    [[1]],
    [[0, 4]],
  ])('computes every output for shape %j, with and without the optional input, leaking nothing', (shape) => {
    const x = tf.randomNormal(shape, 0, 1, 'float32', 3);
    const n = shape[shape.length - 1];
    const offset = tf.linspace(-1, 1, n);
    const before = tf.memory().numTensors;
    for (const inputs of [{ x }, { x, offset }] as Array<Record<string, tf.Tensor>>) {
      const [y, sums] = runFusedKernel(KERNEL, inputs, { scale: 3 });
      const expected = tf.tidy(() => tf.add(tf.mul(x, 3), 'offset' in inputs ? offset : 0));
      expect(y.shape).toEqual(shape);
      expect(Array.from(y.dataSync())).toEqual(Array.from(expected.dataSync()).map((v) => expect.closeTo(v, 5)));
      const expectedSums = tf.tidy(() => tf.reshape(tf.sum(x, -1), [-1]));
      expect(Array.from(sums.dataSync())).toEqual(Array.from(expectedSums.dataSync()).map((v) => expect.closeTo(v, 5)));
      tf.dispose([y, sums, expected, expectedSums]);
    }
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, offset]);
  });

  it('refuses an input that is not float32, naming the kernel', () => {
    const x = tf.tensor2d([[1, 2]], [1, 2], 'int32');
    expect(() => runFusedKernel(KERNEL, { x }, { scale: 1 })).toThrow(/MieTestAffineRowSum: input x must be float32/);
    x.dispose();
  });

  it('reads its inputs after a large allocation grew the heap', () => {
    // The outputs are allocated before the views of the inputs are taken (on wasm an allocation
    // can replace the heap's buffer): a 64 MB output forces the heap to grow first.
    const x = tf.fill([4096, 4096], 0.5);
    const [y, sums] = runFusedKernel(KERNEL, { x }, { scale: 2 });
    expect(y.dataSync()[4096 * 4096 - 1]).toBe(1);
    expect(sums.dataSync()[4095]).toBe(2048);
    tf.dispose([x, y, sums]);
  });
});

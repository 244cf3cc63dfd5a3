import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { BACKEND_CHOICES, backendFromEnvironment, getDevice, ready, setBackend, setModuleLoader, type ModuleLoader } from './backend';
import { MieBackendError } from './errors';
import { tf } from './tfjs';

const GPU_PACKAGE = '@tensorflow/tfjs-node-gpu';
const NODE_PACKAGE = '@tensorflow/tfjs-node';

/** The error Node's (and Jest's) require throws for a package that is not installed. */
function notFound(name: string): Error {
  return Object.assign(new Error(`Cannot find module '${name}'`), { code: 'MODULE_NOT_FOUND' });
}

/** Registers a stand-in for the "tensorflow" backend a tfjs-node package registers on load. */
function registerFakeTensorflow(gpuVisible: boolean): void {
  tf.registerBackend('tensorflow', () => Object.assign(new MathBackendCPU(), { binding: { isUsingGpuDevice: () => gpuVisible } }));
}

/**
 * A loader in which only `installed` packages exist; loading one registers the fake backend.
 * Records every name it was asked for.
 */
function stubLoader(installed: string[], gpuVisible = false): ModuleLoader & { calls: string[] } {
  const calls: string[] = [];
  const loader = (name: string): unknown => {
    calls.push(name);
    if (!installed.includes(name)) throw notFound(name);
    if (!tf.findBackendFactory('tensorflow')) registerFakeTensorflow(gpuVisible);
    return {};
  };
  return Object.assign(loader, { calls });
}

/** Awaits `promise` and returns the MieBackendError it rejects with (fails otherwise). */
async function backendError(promise: Promise<unknown>): Promise<MieBackendError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(MieBackendError);
  return error as MieBackendError;
}

const savedEnv = process.env.MIE_BACKEND;
let previousLoader: ModuleLoader | null = null;

/** Installs `loader` for the current test; afterEach restores the previous one. */
function useLoader(loader: ModuleLoader): void {
  const previous = setModuleLoader(loader);
  if (previousLoader === null) previousLoader = previous;
}

beforeEach(() => {
  delete process.env.MIE_BACKEND;
});

afterEach(async () => {
  if (previousLoader !== null) {
    setModuleLoader(previousLoader);
    previousLoader = null;
  }
  if (savedEnv === undefined) delete process.env.MIE_BACKEND;
  else process.env.MIE_BACKEND = savedEnv;
  await setBackend('cpu');
  if (tf.findBackendFactory('tensorflow')) tf.removeBackend('tensorflow');
});

describe('setBackend / getDevice', () => {
  it('activates the cpu backend', async () => {
    const info = await setBackend('cpu');
    expect(tf.getBackend()).toBe('cpu');
    const expected = { backend: 'cpu', kind: 'cpu', requested: 'cpu', package: '@tensorflow/tfjs-backend-cpu' };
    expect(info).toEqual(expected);
    expect(getDevice()).toEqual(expected);
  });

  it('activates the wasm backend and reports simd and threads', async () => {
    const info = await setBackend('wasm');
    expect(tf.getBackend()).toBe('wasm');
    expect(info).toMatchObject({ backend: 'wasm', kind: 'cpu', requested: 'wasm', package: '@tensorflow/tfjs-backend-wasm' });
    expect(typeof info.simd).toBe('boolean');
    expect(Number.isInteger(info.threads)).toBe(true);
    expect(info.threads).toBeGreaterThanOrEqual(1);
    expect(getDevice()).toEqual(info);
    // Ops really run there.
    const sum = tf.tidy(() => tf.sum(tf.tensor1d([1, 2, 3])).dataSync()[0]);
    expect(sum).toBe(6);
  });

  it('returns copies: mutating a result does not change getDevice()', async () => {
    const info = await setBackend('cpu');
    info.backend = 'changed';
    expect(getDevice().backend).toBe('cpu');
  });

  it('rejects an unknown choice with MieBackendError listing the valid ones', async () => {
    const error = await backendError(setBackend('bogus' as never));
    expect(error.message).toContain('"bogus"');
    for (const choice of BACKEND_CHOICES) expect(error.message).toContain(choice);
    expect(tf.getBackend()).toBe('cpu');
  });

  it('serialises concurrent calls: the last one wins', async () => {
    const [first, second] = await Promise.all([setBackend('wasm'), setBackend('cpu')]);
    expect(first.backend).toBe('wasm');
    expect(second.backend).toBe('cpu');
    expect(tf.getBackend()).toBe('cpu');
    expect(getDevice().backend).toBe('cpu');
  });

  it('serialises concurrent calls even when the first initialises slowly', async () => {
    // A "tensorflow" backend whose initialisation takes a while: without the queue, the cpu
    // switch would finish first and the slow one would win.
    tf.registerBackend('tensorflow', () => new Promise((resolve) => setTimeout(() => resolve(new MathBackendCPU()), 50)));
    useLoader(stubLoader([NODE_PACKAGE]));
    const [first, second] = await Promise.all([setBackend('tensorflow'), setBackend('cpu')]);
    expect(first.backend).toBe('tensorflow');
    expect(second.backend).toBe('cpu');
    expect(tf.getBackend()).toBe('cpu');
    expect(getDevice().backend).toBe('cpu');
  });

  it('describes a backend chosen directly through tf.setBackend', async () => {
    await setBackend('cpu');
    await tf.setBackend('wasm');
    expect(getDevice()).toEqual({ backend: 'wasm', kind: 'cpu', requested: 'wasm', package: '@tensorflow/tfjs-backend-wasm' });
  });
});

describe('MIE_BACKEND', () => {
  it('is used by setBackend() without an argument', async () => {
    await setBackend('wasm');
    process.env.MIE_BACKEND = 'cpu';
    expect(backendFromEnvironment()).toBe('cpu');
    const info = await setBackend();
    expect(info).toMatchObject({ backend: 'cpu', requested: 'cpu' });
    expect(tf.getBackend()).toBe('cpu');

    process.env.MIE_BACKEND = 'wasm';
    expect((await setBackend()).backend).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
  });

  it('means auto when unset or empty', async () => {
    delete process.env.MIE_BACKEND;
    expect(backendFromEnvironment()).toBe('auto');
    process.env.MIE_BACKEND = '';
    expect(backendFromEnvironment()).toBe('auto');
  });

  it('rejects an invalid value, naming MIE_BACKEND and the valid choices', async () => {
    process.env.MIE_BACKEND = 'gpu';
    const error = await backendError(setBackend());
    expect(error.message).toContain('MIE_BACKEND');
    expect(error.message).toContain('"gpu"');
    for (const choice of BACKEND_CHOICES) expect(error.message).toContain(choice);
    expect(() => backendFromEnvironment()).toThrow(MieBackendError);
    expect(tf.getBackend()).toBe('cpu');
  });

  it('an explicit argument wins over MIE_BACKEND', async () => {
    process.env.MIE_BACKEND = 'wasm';
    expect((await setBackend('cpu')).backend).toBe('cpu');
  });
});

describe('ready', () => {
  it('selects the default backend when none is active', async () => {
    await setBackend('cpu');
    // Make tfjs have no active backend at all: activate a throwaway backend, then remove it.
    tf.registerBackend('mie-test-none', () => new MathBackendCPU());
    await tf.setBackend('mie-test-none');
    tf.removeBackend('mie-test-none');
    expect(tf.getBackend()).toBeFalsy();
    expect(() => getDevice()).toThrow(MieBackendError);

    const loader = stubLoader([]);
    useLoader(loader);
    const info = await ready();
    // auto: neither tfjs-node package is installed, so wasm.
    expect(info).toMatchObject({ backend: 'wasm', requested: 'auto' });
    expect(tf.getBackend()).toBe('wasm');
    expect(loader.calls).toEqual([GPU_PACKAGE, NODE_PACKAGE]);
    expect(getDevice()).toEqual(info);
  });

  it('selects the backend MIE_BACKEND names when the active one is not MIE’s choice', async () => {
    await setBackend('wasm');
    await tf.setBackend('cpu'); // behind MIE's back
    process.env.MIE_BACKEND = 'cpu';
    const info = await ready();
    expect(info).toEqual({ backend: 'cpu', kind: 'cpu', requested: 'cpu', package: '@tensorflow/tfjs-backend-cpu' });
  });

  it('is a no-op when a backend is active', async () => {
    await setBackend('cpu');
    process.env.MIE_BACKEND = 'wasm'; // would switch if ready() selected again
    const loader = stubLoader([GPU_PACKAGE, NODE_PACKAGE], true);
    useLoader(loader);
    const info = await ready();
    expect(info).toEqual({ backend: 'cpu', kind: 'cpu', requested: 'cpu', package: '@tensorflow/tfjs-backend-cpu' });
    expect(tf.getBackend()).toBe('cpu');
    expect(loader.calls).toEqual([]);
  });

  it('waits for a pending setBackend', async () => {
    await setBackend('cpu');
    const switching = setBackend('wasm');
    const info = await ready();
    expect(info.backend).toBe('wasm');
    await switching;
    expect(tf.getBackend()).toBe('wasm');
  });
});

describe('optional tfjs-node packages (stubbed loader)', () => {
  it('auto: tfjs-node-gpu that sees a GPU -> tensorflow on the gpu', async () => {
    const loader = stubLoader([GPU_PACKAGE, NODE_PACKAGE], true);
    useLoader(loader);
    const info = await setBackend('auto');
    expect(info).toEqual({ backend: 'tensorflow', kind: 'gpu', requested: 'auto', package: GPU_PACKAGE });
    expect(tf.getBackend()).toBe('tensorflow');
    expect(getDevice()).toEqual(info);
    // Only one tfjs-node package may be loaded per process.
    expect(loader.calls).toEqual([GPU_PACKAGE]);
  });

  it('auto: tfjs-node-gpu without a visible GPU -> tensorflow on the cpu, through the gpu package', async () => {
    useLoader(stubLoader([GPU_PACKAGE], false));
    const info = await setBackend('auto');
    expect(info).toEqual({ backend: 'tensorflow', kind: 'cpu', requested: 'auto', package: GPU_PACKAGE });
    expect(tf.getBackend()).toBe('tensorflow');
  });

  it('auto: only tfjs-node -> tensorflow on the cpu', async () => {
    // gpuVisible is ignored for the cpu package: kind must still be cpu.
    const loader = stubLoader([NODE_PACKAGE], true);
    useLoader(loader);
    const info = await setBackend('auto');
    expect(info).toEqual({ backend: 'tensorflow', kind: 'cpu', requested: 'auto', package: NODE_PACKAGE });
    expect(tf.getBackend()).toBe('tensorflow');
    expect(loader.calls).toEqual([GPU_PACKAGE, NODE_PACKAGE]);
  });

  it('auto: neither package -> wasm', async () => {
    useLoader(stubLoader([]));
    const info = await setBackend('auto');
    expect(info).toMatchObject({ backend: 'wasm', kind: 'cpu', requested: 'auto', package: '@tensorflow/tfjs-backend-wasm' });
    expect(tf.getBackend()).toBe('wasm');
  });

  it('tensorflow-gpu with a visible GPU -> gpu', async () => {
    useLoader(stubLoader([GPU_PACKAGE], true));
    const info = await setBackend('tensorflow-gpu');
    expect(info).toEqual({ backend: 'tensorflow', kind: 'gpu', requested: 'tensorflow-gpu', package: GPU_PACKAGE });
  });

  it('tensorflow-gpu without the package -> MieBackendError naming it', async () => {
    useLoader(stubLoader([NODE_PACKAGE]));
    const error = await backendError(setBackend('tensorflow-gpu'));
    expect(error.message).toContain(GPU_PACKAGE);
    expect(error.message).toContain('not installed');
    expect(tf.getBackend()).toBe('cpu');
  });

  it('tensorflow-gpu with the package but no GPU -> MieBackendError "sees no GPU"', async () => {
    useLoader(stubLoader([GPU_PACKAGE], false));
    const error = await backendError(setBackend('tensorflow-gpu'));
    expect(error.message).toContain('sees no GPU');
    expect(error.message).toContain(GPU_PACKAGE);
  });

  it('tensorflow prefers tfjs-node, and falls back to tfjs-node-gpu', async () => {
    const both = stubLoader([GPU_PACKAGE, NODE_PACKAGE], true);
    useLoader(both);
    expect(await setBackend('tensorflow')).toEqual({ backend: 'tensorflow', kind: 'cpu', requested: 'tensorflow', package: NODE_PACKAGE });
    expect(both.calls).toEqual([NODE_PACKAGE]);

    await setBackend('cpu');
    tf.removeBackend('tensorflow');
    setModuleLoader(stubLoader([GPU_PACKAGE], true));
    expect(await setBackend('tensorflow')).toEqual({ backend: 'tensorflow', kind: 'gpu', requested: 'tensorflow', package: GPU_PACKAGE });
  });

  it('tensorflow with neither package -> MieBackendError', async () => {
    useLoader(stubLoader([]));
    const error = await backendError(setBackend('tensorflow'));
    expect(error.message).toContain(NODE_PACKAGE);
    expect(error.message).toContain('not installed');
    expect(tf.getBackend()).toBe('cpu');
  });

  it('a package that is installed but fails to load -> MieBackendError "failed to load"', async () => {
    useLoader((name) => {
      if (name === GPU_PACKAGE) throw notFound(GPU_PACKAGE);
      // A missing native binding is a MODULE_NOT_FOUND too, but for another file: not "not installed".
      throw Object.assign(new Error(`Cannot find module '/x/node_modules/${NODE_PACKAGE}/lib/napi-v8/tfjs_binding.node'`), {
        code: 'MODULE_NOT_FOUND',
      });
    });
    for (const choice of ['auto', 'tensorflow'] as const) {
      const error = await backendError(setBackend(choice));
      expect(error.message).toContain(NODE_PACKAGE);
      expect(error.message).toContain('failed to load');
      expect(error.message).toContain('tfjs_binding.node');
    }

    setModuleLoader(() => {
      throw new Error('libtensorflow.so.2: cannot open shared object file');
    });
    const error = await backendError(setBackend('auto'));
    expect(error.message).toContain(GPU_PACKAGE);
    expect(error.message).toContain('failed to load');
    expect(error.message).toContain('libtensorflow.so.2');
    expect(tf.getBackend()).toBe('cpu');
  });

  it('a package that loads but registers no "tensorflow" backend -> MieBackendError naming tfjs-core', async () => {
    useLoader((name) => {
      if (name !== NODE_PACKAGE) throw notFound(name);
      return {}; // as if it registered on its own copy of tfjs-core
    });
    for (const choice of ['auto', 'tensorflow'] as const) {
      const error = await backendError(setBackend(choice));
      expect(error.message).toContain('tfjs-core');
      expect(error.message).toContain(tf.version_core);
      expect(error.message).toContain(NODE_PACKAGE);
    }
    expect(tf.getBackend()).toBe('cpu');
  });
});

describe('webgpu and webgl choices (stubbed navigator.gpu and loader)', () => {
  const WEBGPU_PACKAGE = '@tensorflow/tfjs-backend-webgpu';
  const holder = globalThis as { navigator?: { gpu?: unknown } };
  let hadNavigator = false;

  /** Installs a fake `navigator.gpu` whose adapter is `adapter` (null: none). */
  function fakeGpu(adapter: unknown): void {
    hadNavigator = holder.navigator !== undefined;
    if (!hadNavigator) Object.defineProperty(globalThis, 'navigator', { value: {}, configurable: true, writable: true });
    Object.defineProperty(holder.navigator!, 'gpu', { value: { requestAdapter: async () => adapter }, configurable: true, writable: true });
  }

  afterEach(() => {
    if (holder.navigator) delete holder.navigator.gpu;
    if (!hadNavigator) delete (globalThis as { navigator?: unknown }).navigator;
    if (tf.findBackendFactory('webgpu')) tf.removeBackend('webgpu');
  });

  it('are valid choices, also through MIE_BACKEND', () => {
    expect(BACKEND_CHOICES).toEqual(expect.arrayContaining(['webgpu', 'webgl']));
    for (const choice of ['webgpu', 'webgl']) {
      process.env.MIE_BACKEND = choice;
      expect(backendFromEnvironment()).toBe(choice);
    }
  });

  it('webgl in Node -> MieBackendError saying it needs a browser, naming the alternatives', async () => {
    const error = await backendError(setBackend('webgl'));
    expect(error.message).toContain('needs a browser');
    expect(error.message).toContain('webgpu');
    expect(tf.getBackend()).toBe('cpu');
  });

  it('webgpu without @tensorflow/tfjs-backend-webgpu -> "not installed", never "failed to load"', async () => {
    fakeGpu({ info: {} });
    useLoader(stubLoader([]));
    const error = await backendError(setBackend('webgpu'));
    expect(error.message).toContain(WEBGPU_PACKAGE);
    expect(error.message).toContain('not installed');
    expect(error.message).not.toContain('failed to load');
    expect(tf.getBackend()).toBe('cpu');
  });

  it('webgpu whose package fails while loading -> "failed to load" with the cause', async () => {
    fakeGpu({ info: {} });
    useLoader(() => {
      throw new Error('GPUBufferUsage is not defined');
    });
    const error = await backendError(setBackend('webgpu'));
    expect(error.message).toContain('failed to load');
    expect(error.message).toContain('GPUBufferUsage is not defined');
  });

  it('webgpu with no adapter -> MieBackendError "no GPU adapter"', async () => {
    fakeGpu(null);
    useLoader((name) => {
      if (name !== WEBGPU_PACKAGE) throw notFound(name);
      tf.registerBackend('webgpu', () => new MathBackendCPU());
      return {};
    });
    const error = await backendError(setBackend('webgpu'));
    expect(error.message).toContain('no GPU adapter');
    expect(tf.getBackend()).toBe('cpu');
  });

  it('webgpu with an adapter -> kind gpu, the adapter described', async () => {
    fakeGpu({ info: { vendor: 'acme', architecture: 'rdna', device: '', description: 'Acme GPU' } });
    useLoader((name) => {
      if (name !== WEBGPU_PACKAGE) throw notFound(name);
      tf.registerBackend('webgpu', () => new MathBackendCPU()); // computes like a GPU would, here on the cpu
      return {};
    });
    const info = await setBackend('webgpu');
    expect(info).toEqual({
      backend: 'webgpu',
      kind: 'gpu',
      requested: 'webgpu',
      package: WEBGPU_PACKAGE,
      gpu: { vendor: 'acme', architecture: 'rdna', device: '', description: 'Acme GPU' },
    });
    expect(getDevice()).toEqual(info);
    expect(tf.getBackend()).toBe('webgpu');
  });

  it('a webgpu package on another tfjs-core copy -> MieBackendError naming tfjs-core', async () => {
    fakeGpu({ info: {} });
    useLoader(() => ({}));
    const error = await backendError(setBackend('webgpu'));
    expect(error.message).toContain('tfjs-core');
    expect(error.message).toContain(tf.version_core);
  });
});

describe('optional tfjs-node packages (real require)', () => {
  // No module-registry reset is needed: backend.ts's `require` is the test's module registry,
  // which consults jest.doMock's virtual mocks for modules not required before, so the mock
  // shares this file's tfjs instance. (The virtual mock cannot be undone with jest.dontMock,
  // which resolves the name and throws for a package that is not installed: keep this test last.)

  it('treats packages that are not installed as absent: auto -> wasm', async () => {
    const info = await setBackend('auto');
    expect(info).toMatchObject({ backend: 'wasm', requested: 'auto' });
    const error = await backendError(setBackend('tensorflow'));
    expect(error.message).toContain('not installed');
  });

  it('loads @tensorflow/tfjs-node through require', async () => {
    const factory = jest.fn(() => {
      registerFakeTensorflow(false);
      return {};
    });
    jest.doMock(NODE_PACKAGE, factory, { virtual: true });
    const info = await setBackend('auto');
    expect(factory).toHaveBeenCalledTimes(1);
    expect(info).toEqual({ backend: 'tensorflow', kind: 'cpu', requested: 'auto', package: NODE_PACKAGE });
    expect(tf.getBackend()).toBe('tensorflow');
  });
});

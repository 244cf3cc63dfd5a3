import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { BaseModel, CONFIG_FILE, WEIGHTS_FILE, registerModel, registeredModels } from './base-model';
import type { FileSystem } from './atomic-files';
import { setBackend } from './backend';
import { MieConfigError, MieSerializationError } from './errors';
import { parameter } from './module';
import { readSafetensors, writeSafetensors } from './safetensors';
import { tf } from './tfjs';

interface AffineOptions {
  size: number;
  scale?: number;
}

class Affine extends BaseModel<AffineOptions> {
  readonly config: AffineOptions;
  weight: tf.Variable;
  constructor(options: AffineOptions) {
    super();
    if (!Number.isInteger(options?.size) || options.size < 1) throw new MieConfigError(`Affine: option "size" must be a positive integer. Received: ${options?.size}.`);
    this.config = { ...options };
    this.weight = parameter(() => tf.mul(tf.range(0, options.size), options.scale ?? 1));
  }
  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => tf.mul(x, this.weight));
  }
}
registerModel(Affine);

class ScaledAffine extends Affine {}
registerModel(ScaledAffine);

class Other extends BaseModel<{ n: number }> {
  readonly config = { n: 1 };
  bias = parameter(() => tf.zeros([1]));
  forward(x: tf.Tensor): tf.Tensor {
    return tf.add(x, this.bias);
  }
}
registerModel(Other);

class Unregistered extends Affine {}

let root: string;
beforeAll(async () => {
  await setBackend('cpu');
  root = await fsp.mkdtemp(path.join(os.tmpdir(), 'mie-base-model-'));
});
afterAll(async () => {
  await fsp.rm(root, { recursive: true, force: true });
});

let counter = 0;
const freshDir = () => path.join(root, `ckpt-${counter++}`);
const weightsOf = (m: Affine) => Array.from(m.weight.dataSync());

describe('BaseModel save/load', () => {
  it('writes config.json and model.safetensors per the file format, and loads them back', async () => {
    const dir = freshDir();
    const model = new Affine({ size: 3, scale: 2 });
    await model.save(dir);
    const header = JSON.parse(fs.readFileSync(path.join(dir, CONFIG_FILE), 'utf8'));
    expect(header).toMatchObject({ format: 'mie', formatVersion: 1, className: 'Affine', config: { size: 3, scale: 2 } });
    expect(header.versions['@tensorflow/tfjs-core']).toBe(tf.version_core);
    const { tensors, metadata } = readSafetensors(fs.readFileSync(path.join(dir, WEIGHTS_FILE)));
    expect(Object.keys(tensors)).toEqual(['weight']);
    expect(tensors.weight.dtype).toBe('float32');
    expect(metadata['mie.checkpointId']).toBe(header.checkpointId);
    tf.dispose(Object.values(tensors));

    const viaBase = await BaseModel.load(dir);
    expect(viaBase).toBeInstanceOf(Affine);
    expect(viaBase.training).toBe(false);
    expect(weightsOf(viaBase as Affine)).toEqual([0, 2, 4]);
    const viaClass = await Affine.load(dir);
    expect(viaClass.config).toEqual({ size: 3, scale: 2 });
    [model, viaBase, viaClass].forEach((m) => m.dispose());
  });

  it('round-trips through buffers without a file system', () => {
    const model = new ScaledAffine({ size: 2, scale: 3 });
    const copy = BaseModel.fromBuffers(model.toBuffers());
    expect(copy).toBeInstanceOf(ScaledAffine);
    expect(weightsOf(copy as Affine)).toEqual([0, 3]);
    // A subclass checkpoint loads through its parent class, not through an unrelated one.
    expect(Affine.fromBuffers(model.toBuffers())).toBeInstanceOf(ScaledAffine);
    expect(() => Other.fromBuffers(model.toBuffers())).toThrow(/holds a ScaledAffine, which is not a Other/);
    expect(() => ScaledAffine.fromBuffers(new Affine({ size: 1 }).toBuffers())).toThrow(MieSerializationError);
    model.dispose();
    copy.dispose();
  });

  it('refuses to save an unregistered class or a config that JSON would change', async () => {
    const model = new Unregistered({ size: 1 });
    await expect(model.save(freshDir())).rejects.toThrow(/registerModel\(Unregistered\)/);
    const nan = new Affine({ size: 1, scale: NaN });
    expect(() => nan.toBuffers()).toThrow(/survives JSON unchanged/);
    expect(() => registerModel(Unregistered, 'Affine')).toThrow(/already registered/);
    expect(registeredModels()).toEqual(expect.arrayContaining(['Affine', 'Other', 'ScaledAffine']));
    model.dispose();
    nan.dispose();
  });

  it('leaks no tensors across save and load', async () => {
    const dir = freshDir();
    const model = new Affine({ size: 4 });
    const before = tf.memory().numTensors;
    await model.save(dir);
    const loaded = await Affine.load(dir);
    loaded.dispose();
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });
});

/** A file system that fails at its n-th operation (open, write, sync, close, rename, ...). */
function failingAt(n: number): { fs: FileSystem; count: () => number; log: string[] } {
  let ops = 0;
  const log: string[] = [];
  const tick = (what: string) => {
    log.push(what);
    if (ops++ === n) throw new Error(`injected failure in ${what}`);
  };
  const fs: FileSystem = {
    mkdir: (async (...args: Parameters<typeof fsp.mkdir>) => (tick('mkdir'), fsp.mkdir(...args))) as typeof fsp.mkdir,
    readdir: (async (...args: Parameters<typeof fsp.readdir>) => (tick('readdir'), fsp.readdir(...args))) as typeof fsp.readdir,
    rm: (async (...args: Parameters<typeof fsp.rm>) => fsp.rm(...args)) as typeof fsp.rm,
    rename: (async (...args: Parameters<typeof fsp.rename>) => (tick('rename'), fsp.rename(...args))) as typeof fsp.rename,
    open: (async (...args: Parameters<typeof fsp.open>) => {
      tick('open');
      const handle = await fsp.open(...args);
      return new Proxy(handle, {
        get(target, prop) {
          const value = Reflect.get(target, prop);
          if (typeof value !== 'function') return value;
          return (...a: unknown[]) => {
            if (prop === 'write' || prop === 'sync') tick(String(prop));
            return (value as (...x: unknown[]) => unknown).apply(target, a);
          };
        },
      });
    }) as typeof fsp.open,
  };
  return { fs, count: () => ops, log };
}

describe('atomic saves', () => {
  it('leaves a loadable checkpoint (old or new, old before any rename) when any step of a save fails', async () => {
    const probe = failingAt(-1);
    const scratch = new Affine({ size: 2 });
    await scratch.save(freshDir(), probe.fs);
    const total = probe.count();
    const firstRename = probe.log.indexOf('rename');
    scratch.dispose();
    expect(total).toBeGreaterThan(8);
    expect(firstRename).toBeGreaterThan(4);

    const outcomes = new Set<string>();
    for (let n = 0; n < total; n++) {
      const dir = freshDir();
      const old = new Affine({ size: 2, scale: 1 });
      await old.save(dir);
      // The new checkpoint even has another architecture: a mix of files would not load.
      const next = new Affine({ size: 3, scale: 5 });
      const saved = await next.save(dir, failingAt(n).fs).then(
        () => true,
        (error) => {
          expect(error).toBeInstanceOf(MieSerializationError);
          expect(error.message).toMatch(/injected failure/);
          return false;
        },
      );
      const loaded = (await BaseModel.load(dir)) as Affine;
      const weights = JSON.stringify(weightsOf(loaded));
      if (saved || n > firstRename) expect(weights).toBe('[0,5,10]');
      else if (n <= firstRename) expect(weights).toBe('[0,1]');
      outcomes.add(`${saved}:${weights}`);
      expect(fs.readdirSync(dir).filter((f) => f.startsWith('.mie-tmp-'))).toEqual([]);
      [old, next, loaded].forEach((m) => m.dispose());
    }
    // Failures before the renames keep the old checkpoint; the directory fsync is best effort.
    expect([...outcomes].sort()).toEqual(['false:[0,1]', 'false:[0,5,10]', 'true:[0,5,10]']);
  });

  it('loads the new checkpoint consistently when a crash fell between the two renames', async () => {
    const dir = freshDir();
    const old = new Affine({ size: 2, scale: 1 });
    await old.save(dir);
    const oldConfig = fs.readFileSync(path.join(dir, CONFIG_FILE));
    const next = new Affine({ size: 3, scale: 5 });
    await next.save(dir);
    fs.writeFileSync(path.join(dir, CONFIG_FILE), oldConfig); // new weights, old config.json
    const loaded = (await Affine.load(dir)) as Affine;
    expect(loaded.config).toEqual({ size: 3, scale: 5 });
    expect(weightsOf(loaded)).toEqual([0, 5, 10]);
    [old, next, loaded].forEach((m) => m.dispose());
  });
});

describe('hostile checkpoints', () => {
  const write = (dir: string, config: string | Uint8Array, weights?: Uint8Array) => {
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, CONFIG_FILE), config);
    if (weights) fs.writeFileSync(path.join(dir, WEIGHTS_FILE), weights);
  };
  const good = () => {
    const m = new Affine({ size: 2 });
    const b = m.toBuffers();
    m.dispose();
    return { header: JSON.parse(new TextDecoder().decode(b.config)), weights: b.weights };
  };
  const weightsWithId = (id: string, extra: Record<string, string> = {}) => {
    const t = tf.zeros([2]);
    const bytes = writeSafetensors({ weight: t }, { 'mie.checkpointId': id, ...extra });
    t.dispose();
    return bytes;
  };

  const cases: Array<[string, (h: Record<string, unknown>) => unknown, RegExp]> = [
    ['an array', () => [1], /must hold a JSON object/],
    ['another format', (h) => ({ ...h, format: 'keras' }), /"format" must be "mie"/],
    ['a newer format version', (h) => ({ ...h, formatVersion: 99 }), /newer than this @mie\/core/],
    ['a string format version', (h) => ({ ...h, formatVersion: '1' }), /"formatVersion" must be a positive integer/],
    ['no className', (h) => ({ ...h, className: undefined }), /"className" must be a non-empty string/],
    ['an unregistered className', (h) => ({ ...h, className: 'constructor' }), /class "constructor" is not registered/],
    ['a prototype className', (h) => ({ ...h, className: '__proto__' }), /class "__proto__" is not registered/],
    ['a config of the wrong type', (h) => ({ ...h, config: 'size=2' }), /"config" must be an object/],
    ['a config the class rejects', (h) => ({ ...h, config: { size: 'two' } }), /config for Affine is invalid: Affine: option "size"/],
    ['a config of another architecture', (h) => ({ ...h, config: { size: 5 } }), /"weight" has shape \[2\], expected \[5\]/],
    ['non-string versions', (h) => ({ ...h, versions: { a: 1 } }), /"versions" must map/],
  ];
  it.each(cases)('rejects a config.json with %s', async (_label, mutate, message) => {
    const { header, weights } = good();
    const dir = freshDir();
    write(dir, JSON.stringify(mutate(header)), weights);
    const before = tf.memory().numTensors;
    await expect(BaseModel.load(dir)).rejects.toThrow(MieSerializationError);
    await expect(BaseModel.load(dir)).rejects.toThrow(message);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('rejects broken bytes, duplicate keys, oversized and missing files', async () => {
    const { header, weights } = good();
    const cases: Array<[string | Uint8Array, RegExp]> = [
      ['{"format": "mie",', /not valid JSON/],
      [new Uint8Array([0x7b, 0xc3, 0x28, 0x7d]), /not valid UTF-8/],
      [`{"format":"mie","format":"mie"}`, /not valid JSON/],
      [' '.repeat(16 * 1024 * 1024 + 1), /above the 16777216-byte limit/],
    ];
    for (const [config, message] of cases) {
      const dir = freshDir();
      write(dir, config, weights);
      await expect(BaseModel.load(dir)).rejects.toThrow(message);
    }
    const noWeights = freshDir();
    write(noWeights, JSON.stringify(header));
    await expect(BaseModel.load(noWeights)).rejects.toThrow(/cannot read .*model\.safetensors/);
    await expect(BaseModel.load(path.join(root, 'nowhere'))).rejects.toThrow(/cannot read .*config\.json/);
    const badWeights = freshDir();
    write(badWeights, JSON.stringify(header), new Uint8Array([1, 2, 3]));
    await expect(BaseModel.load(badWeights)).rejects.toThrow(/model\.safetensors: readSafetensors/);
  });

  it('rejects files from different checkpoints when the weights embed no config', async () => {
    const { header } = good();
    const dir = freshDir();
    write(dir, JSON.stringify(header), weightsWithId('another-id'));
    await expect(BaseModel.load(dir)).rejects.toThrow(/come from different checkpoints/);
    const embeddedBad = freshDir();
    write(embeddedBad, JSON.stringify(header), weightsWithId('x', { 'mie.config': '{"format":"mie"}' }));
    await expect(BaseModel.load(embeddedBad)).rejects.toThrow(/config embedded in model\.safetensors/);
  });
});

import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { BaseModel, CONFIG_FILE, WEIGHTS_FILE, WEIGHTS_INDEX_FILE, registerModel, registeredModels } from './base-model';
import type { FileSystem } from './atomic-files';
import { setBackend } from './backend';
import { MieConfigError, MieSerializationError } from './errors';
import { Module, parameter } from './module';
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

/** A stack of square layers: `layers` tensors of `width x width` (and a bias each). */
interface StackOptions {
  layers: number;
  width: number;
}
let initialisations = 0;
class Square extends Module {
  readonly weight: tf.Variable;
  readonly bias: tf.Variable;
  constructor(width: number, value: number) {
    super();
    this.weight = parameter([width, width], (shape) => (initialisations++, tf.fill(shape, value)));
    this.bias = parameter([width], (shape) => (initialisations++, tf.fill(shape, -value)));
  }
  forward(x: tf.Tensor): tf.Tensor {
    return tf.add(tf.matMul(x, this.weight), this.bias);
  }
}
class Stack extends BaseModel<StackOptions> {
  readonly config: StackOptions;
  readonly layers: Square[];
  constructor(options: StackOptions) {
    super();
    this.config = { ...options };
    this.layers = Array.from({ length: options.layers }, (_, i) => new Square(options.width, i + 1));
  }
  forward(x: tf.Tensor): tf.Tensor {
    return this.layers.reduce((h, layer) => layer.forward(h), x);
  }
}
registerModel(Stack);

const stateValues = (m: Module) => Object.fromEntries(m.namedParameters().map(([name, v]) => [name, Array.from(v.dataSync())]));

describe('sharded checkpoints (the Hugging Face layout)', () => {
  it('writes model-0000k-of-0000N.safetensors and model.safetensors.index.json above maxShardSize, and loads them', async () => {
    const dir = freshDir();
    const model = new Stack({ layers: 5, width: 8 }); // 5 x (256 + 32) bytes
    await model.save(dir, { maxShardSize: 600 });
    const files = fs.readdirSync(dir).sort();
    expect(files).toEqual([CONFIG_FILE, 'model-00001-of-00003.safetensors', 'model-00002-of-00003.safetensors', 'model-00003-of-00003.safetensors', WEIGHTS_INDEX_FILE]);
    const index = JSON.parse(fs.readFileSync(path.join(dir, WEIGHTS_INDEX_FILE), 'utf8'));
    expect(index.metadata.total_size).toBe(5 * (256 + 32));
    expect(index.weight_map['layers.0.weight']).toBe('model-00001-of-00003.safetensors');
    expect(index.weight_map['layers.4.bias']).toBe('model-00003-of-00003.safetensors');
    expect(Object.keys(index.weight_map)).toEqual(Object.keys(model.stateDict()));
    // Each shard is a plain safetensors file (what PyTorch's safetensors reads).
    const { tensors } = readSafetensors(fs.readFileSync(path.join(dir, 'model-00002-of-00003.safetensors')));
    expect(Object.keys(tensors)).toEqual(['layers.2.weight', 'layers.2.bias', 'layers.3.weight', 'layers.3.bias']);
    tf.dispose(Object.values(tensors));
    const loaded = await Stack.load(dir);
    expect(stateValues(loaded)).toEqual(stateValues(model));
    // Saving it small again replaces the shards with one file, and back.
    await loaded.save(dir);
    expect(fs.readdirSync(dir).sort()).toEqual([CONFIG_FILE, WEIGHTS_FILE]);
    await loaded.save(dir, { maxShardSize: 300 });
    expect(fs.readdirSync(dir).filter((f) => f.startsWith('model-'))).toHaveLength(5);
    expect(fs.existsSync(path.join(dir, WEIGHTS_FILE))).toBe(false);
    [model, loaded].forEach((m) => m.dispose());
    await expect(new Stack({ layers: 1, width: 1 }).save(dir, { maxShardSize: 0 })).rejects.toThrow(/maxShardSize/);
  });

  it('leaves the old checkpoint or the new one, whole, when any step of a sharded save fails', async () => {
    const probe = failingAt(-1);
    const scratch = new Stack({ layers: 3, width: 4 });
    await scratch.save(freshDir(), { maxShardSize: 100, fs: probe.fs });
    const total = probe.count();
    scratch.dispose();
    const outcomes = new Set<string>();
    for (let n = 0; n < total; n++) {
      const dir = freshDir();
      const old = new Stack({ layers: 3, width: 4 });
      await old.save(dir, { maxShardSize: 100 });
      // The same shard names, other values (and the next save of another size would mix badly).
      const next = new Stack({ layers: 3, width: 4 });
      for (const v of next.parameters()) v.assign(tf.mul(v, 10));
      const saved = await next.save(dir, { maxShardSize: 100, fs: failingAt(n).fs }).then(
        () => true,
        (error) => {
          expect(error).toBeInstanceOf(MieSerializationError);
          return false;
        },
      );
      const loaded = await Stack.load(dir);
      const values = JSON.stringify(stateValues(loaded));
      const which = values === JSON.stringify(stateValues(next)) ? 'new' : values === JSON.stringify(stateValues(old)) ? 'old' : 'mix';
      expect(which).not.toBe('mix');
      if (saved) expect(which).toBe('new');
      outcomes.add(`${saved}:${which}`);
      expect(fs.readdirSync(dir).filter((f) => f.startsWith('.mie-tmp-'))).toEqual([]);
      [old, next, loaded].forEach((m) => m.dispose());
    }
    expect([...outcomes].sort()).toEqual(['false:new', 'false:old', 'true:new']);
  });

  it('rejects a hostile or inconsistent index with a MieSerializationError', async () => {
    const make = async () => {
      const dir = freshDir();
      const model = new Stack({ layers: 2, width: 2 });
      await model.save(dir, { maxShardSize: 30 });
      model.dispose();
      return dir;
    };
    const indexOf = (dir: string) => JSON.parse(fs.readFileSync(path.join(dir, WEIGHTS_INDEX_FILE), 'utf8'));
    const writeIndex = (dir: string, index: unknown) => fs.writeFileSync(path.join(dir, WEIGHTS_INDEX_FILE), JSON.stringify(index));
    const cases: Array<[string, (index: Record<string, any>) => unknown, RegExp]> = [ // eslint-disable-line @typescript-eslint/no-explicit-any
      ['a path outside the directory', (i) => ({ ...i, weight_map: { ...i.weight_map, 'layers.0.weight': `../${i.weight_map['layers.0.weight']}` } }), /plain file names/],
      ['a hidden file', (i) => ({ ...i, weight_map: { ...i.weight_map, 'layers.0.weight': '.mie-lock' } }), /plain file names/],
      ['a missing shard', (i) => ({ ...i, weight_map: { ...i.weight_map, 'layers.0.weight': 'model-00009-of-00009.safetensors' } }), /model-00009-of-00009\.safetensors/],
      ['a tensor the shard lacks', (i) => ({ ...i, weight_map: { ...i.weight_map, extra: i.weight_map['layers.0.weight'] } }), /the index lists "extra", which the shard lacks/],
      ['a shard holding a tensor the index does not list', (i) => ({ ...i, weight_map: { ...i.weight_map, 'layers.0.bias': undefined } }), /the shard holds "layers\.0\.bias", which the index does not list/],
      ['no weight_map', (i) => ({ metadata: i.metadata }), /"weight_map" object/],
      ['a hostile metadata object', (i) => ({ ...i, metadata: { constructor: { name: { toString: 1 } } } }), /different checkpoints/],
    ];
    for (const [label, mutate, message] of cases) {
      const dir = await make();
      writeIndex(dir, mutate(indexOf(dir)));
      const before = tf.memory().numTensors;
      const error = await Stack.load(dir).then(() => new Error(`${label}: loaded`), (e: Error) => e);
      expect(error).toBeInstanceOf(MieSerializationError);
      expect(error.message).toMatch(message);
      expect(tf.memory().numTensors).toBe(before);
    }
  });
});

describe('loading checks the layout a config implies before building anything', () => {
  it('refuses at once, without allocating, a config that describes a much bigger model than the file', async () => {
    const model = new Stack({ layers: 2, width: 8 });
    const { config, weights } = model.toBuffers();
    model.dispose();
    const header = JSON.parse(new TextDecoder().decode(config));
    for (const layers of [20_000, 60_000]) {
      const hostile = new TextEncoder().encode(JSON.stringify({ ...header, config: { ...header.config, layers } }));
      const before = tf.memory().numTensors;
      const start = performance.now();
      expect(() => Stack.fromBuffers({ config: hostile, weights })).toThrow(/describes a bigger model than the weights hold \(4 tensors, 144 values\)/);
      expect(performance.now() - start).toBeLessThan(500);
      expect(tf.memory().numTensors).toBe(before);
    }
    // A config a little off is reported by name and shape.
    const off = new TextEncoder().encode(JSON.stringify({ ...header, config: { layers: 3, width: 8 } }));
    expect(() => Stack.fromBuffers({ config: off, weights })).toThrow(/the weights do not match the config of Stack: missing keys: "layers\.2\.weight", "layers\.2\.bias"/);
    const wide = new TextEncoder().encode(JSON.stringify({ ...header, config: { layers: 2, width: 9 } }));
    expect(() => Stack.fromBuffers({ config: wide, weights })).toThrow(/"layers\.0\.weight" has shape \[8, 8\], expected \[9, 9\]/);
  });

  it('builds the model from the file without initialising it first', async () => {
    const model = new Stack({ layers: 2, width: 3 });
    const buffers = model.toBuffers();
    const before = initialisations;
    const copy = Stack.fromBuffers(buffers);
    expect(initialisations).toBe(before);
    expect(stateValues(copy)).toEqual(stateValues(model));
    copy.dispose();
    model.dispose();
  });

  it('refuses special files, bad arguments and disposed models with typed errors', async () => {
    const dir = freshDir();
    const model = new Stack({ layers: 1, width: 2 });
    await model.save(dir);
    fs.rmSync(path.join(dir, CONFIG_FILE));
    execFileSync('mkfifo', [path.join(dir, CONFIG_FILE)]);
    const start = performance.now();
    await expect(Stack.load(dir)).rejects.toThrow(/config\.json must be a regular file\. Received: a FIFO/);
    expect(performance.now() - start).toBeLessThan(1000);
    await expect(Stack.load(123 as never)).rejects.toThrow(/Stack\.load: the directory must be a non-empty string path or a URL\. Received: 123/);
    await expect(BaseModel.load('' as never)).rejects.toThrow(MieSerializationError);
    await expect(model.save(null as never)).rejects.toThrow(/Stack\.save: the directory must be a non-empty string/);
    expect(() => Stack.fromBuffers(null as never)).toThrow(/expected \{ config: Uint8Array, weights: Uint8Array \}/);
    model.dispose();
    await expect(model.save(freshDir())).rejects.toThrow(/Stack\.save: the module was disposed/);
    expect(() => model.toBuffers()).toThrow(/disposed/);
  });
});

/**
 * PyTorch state dicts for MIE modules: {@link loadTorchStateDict} reads one (as
 * `torch.save(model.state_dict())` or `safetensors.torch.save_file` wrote it, after
 * `readSafetensors`), {@link exportTorchStateDict} writes one that `model.load_state_dict` accepts.
 *
 * The mapping is a set of generic rules over MIE's parameter paths, so it covers any module built
 * from MIE parts, not a fixed list of classes:
 *
 * - each path segment goes from lowerCamelCase to snake_case (`positionalEncoding` ->
 *   `positional_encoding`, `outputProjection` -> `output_projection`, `layers.3` stays);
 * - `selfAttn` is `self_attn` and `crossAttn` is `multihead_attn` (`torch.nn.TransformerDecoderLayer`);
 * - inside a {@link MultiHeadAttention} (`torch.nn.MultiheadAttention`), `qProj`, `kProj`, `vProj`
 *   are the three row blocks of `in_proj_weight [3e, e]` and `in_proj_bias [3e]`, and `outProj`
 *   is `out_proj`;
 * - a weight reachable by two paths (tied embeddings) is written once, under the first path, as
 *   PyTorch's `named_parameters()` lists it; the other paths are accepted when loading (they must
 *   then hold the same values).
 *
 * So `TransformerEncoderLayer` and `TransformerDecoderLayer` are `torch.nn.TransformerEncoderLayer`
 * and `torch.nn.TransformerDecoderLayer` one to one, and the stacks and the seq2seq model are the
 * PyTorch modules with the same structure:
 *
 * | MIE | PyTorch state dict |
 * | --- | --- |
 * | `MultiHeadAttention` | `in_proj_weight`, `in_proj_bias`, `out_proj.{weight,bias}` |
 * | `TransformerEncoderLayer` | `self_attn.*`, `linear1.*`, `linear2.*`, `norm1.*`, `norm2.*` |
 * | `TransformerDecoderLayer` | the same, plus `multihead_attn.*` and `norm3.*` |
 * | `TransformerEncoder` / `TransformerDecoder` | `embedding.weight` (nn.Embedding), `positional_encoding.weight` (learned positions only, an nn.Embedding or Parameter `[maxSeqLength, dModel]`), `layers.N.*` (as `nn.TransformerEncoder`'s), `norm.*` (pre-norm only) |
 * | `EncoderDecoderTransformer` | `encoder.*`, `decoder.*` as above, `output_projection.{weight,bias}`; with `shareEmbeddings` only `encoder.embedding.weight` (no `decoder.embedding.weight`, no `output_projection`: logits are `h @ encoder.embedding.weight.T`) |
 *
 * Sinusoidal and rotary position tables are not state, here as in PyTorch
 * (`register_buffer(..., persistent=False)`). Token embeddings are looked up and scaled by
 * `sqrt(dModel)` in MIE: the PyTorch model must multiply its `nn.Embedding` output likewise.
 */
import { MieConfigError, MieSerializationError, Module, describeValue, errorMessage, listForMessage, readSync, tf, type LoadStateDictResult } from '@mie/core';
import { MultiHeadAttention } from '@mie/attention';

/** Options of {@link exportTorchStateDict} and {@link torchStateDictLayout}. */
export interface TorchStateDictOptions {
  /**
   * Prepended to every PyTorch name (`'model.'` for a module that PyTorch holds as `self.model`).
   * When loading, keys that do not start with it are ignored. Default `''`.
   */
  prefix?: string;
}

/** Options of {@link loadTorchStateDict}. */
export interface LoadTorchStateDictOptions extends TorchStateDictOptions {
  /**
   * With `true` (the default) a missing or unexpected key is an error, as PyTorch's
   * `load_state_dict(strict=True)`; a wrongly shaped entry always is. With `false` the keys that did
   * not match are returned.
   */
  strict?: boolean;
}

/** One entry of a PyTorch state dict and the MIE parameters it holds. */
export interface TorchStateEntry {
  /** The PyTorch name (`layers.0.self_attn.in_proj_weight`). */
  torchName: string;
  /** The MIE parameter paths it holds, stacked along dimension 0 in this order (one path unless fused). */
  mieNames: string[];
  /** Its PyTorch shape. */
  shape: number[];
  /** Other PyTorch names of the same weights (tied weights reached by another path); accepted by the loader. */
  aliases: string[];
}

interface Entry extends TorchStateEntry {
  variables: tf.Variable[];
}

/** The projections of a MultiHeadAttention that PyTorch stacks into `in_proj_weight` / `in_proj_bias`. */
const FUSED_PROJECTIONS = ['qProj', 'kProj', 'vProj'];
// A Map, so that a field named like an Object.prototype member cannot match.
const SEGMENT_NAMES: ReadonlyMap<string, string> = new Map([['selfAttn', 'self_attn'], ['crossAttn', 'multihead_attn']]);

/** `selfAttn` -> `self_attn`, `crossAttn` -> `multihead_attn`, other lowerCamelCase -> snake_case. */
function torchSegment(segment: string): string {
  return SEGMENT_NAMES.get(segment) ?? segment.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase();
}

function join(prefix: string, name: string): string {
  return prefix ? `${prefix}.${name}` : name;
}

/** The module's own variables by field name, in assignment order (as `Module.namedParameters`). */
function ownVariables(module: Module): Array<[string, tf.Variable]> {
  return Object.entries(module).filter((entry): entry is [string, tf.Variable] => entry[1] instanceof tf.Variable);
}

function checkModule(where: string, module: unknown): asserts module is Module {
  if (!(module instanceof Module)) throw new MieConfigError(errorMessage(where, 'argument "module"', 'must be an MIE Module', module));
}

function checkPrefix(where: string, prefix: unknown): string {
  if (typeof prefix !== 'string') throw new MieConfigError(errorMessage(where, 'option "prefix"', 'must be a string', prefix));
  return prefix;
}

/**
 * Every PyTorch entry of `module`, in PyTorch's order. Walks every path (tied modules included,
 * cycles excepted), so a weight reached twice yields an alias of the first entry.
 */
function layout(module: Module, prefix: string): Entry[] {
  const entries: Entry[] = [];
  const byVariables = new Map<string, Entry>();
  const add = (torchName: string, mieNames: string[], variables: tf.Variable[]): void => {
    const key = variables.map((v) => v.id).join(',');
    const first = byVariables.get(key);
    if (first) {
      first.aliases.push(torchName);
      return;
    }
    const shape = variables.length === 1 ? [...variables[0].shape] : [variables.reduce((rows, v) => rows + v.shape[0], 0), ...variables[0].shape.slice(1)];
    const entry: Entry = { torchName, mieNames, shape, aliases: [], variables };
    byVariables.set(key, entry);
    entries.push(entry);
  };
  // Depth first in field order, as Module.namedModules: the first path to a variable is namedParameters'.
  const visit = (current: Module, miePath: string, torchPath: string, ancestors: Set<Module>): void => {
    if (ancestors.has(current)) return;
    ancestors.add(current);
    const fused = current instanceof MultiHeadAttention ? current : null;
    if (fused && fused.config.numKeyValueHeads !== fused.config.numHeads) {
      throw new MieConfigError(
        `torch state dict: ${miePath || 'the module'} has ${fused.config.numKeyValueHeads} key/value heads for ${fused.config.numHeads} query heads; torch.nn.MultiheadAttention has no grouped key/value heads (save it with save() or stateDict() instead).`,
      );
    }
    for (const [name, variable] of ownVariables(current)) add(join(torchPath, torchSegment(name)), [join(miePath, name)], [variable]);
    if (fused) {
      const [q, k, v] = [fused.qProj, fused.kProj, fused.vProj];
      const names = (field: string) => FUSED_PROJECTIONS.map((p) => join(miePath, `${p}.${field}`));
      add(join(torchPath, 'in_proj_weight'), names('weight'), [q.weight, k.weight, v.weight]);
      const biases = [q.bias, k.bias, v.bias].filter((bias): bias is tf.Variable => bias !== null);
      // torch.nn.MultiheadAttention(bias=False) has no in_proj_bias; it cannot have some of the three.
      if (biases.length === 3) add(join(torchPath, 'in_proj_bias'), names('bias'), biases);
      else if (biases.length > 0) throw new MieConfigError(`torch state dict: ${join(miePath, 'qProj/kProj/vProj')} must all have a bias or none, to map onto in_proj_bias.`);
    }
    for (const [name, child] of current.namedChildren()) {
      // The q/k/v projections are in in_proj_*; anything else they hold would have no PyTorch name.
      if (fused && FUSED_PROJECTIONS.includes(name)) {
        if (!child.namedParameters().every(([field]) => field === 'weight' || field === 'bias')) {
          throw new MieConfigError(`torch state dict: ${join(miePath, name)} has parameters besides weight and bias, which torch.nn.MultiheadAttention's in_proj_* cannot hold.`);
        }
        continue;
      }
      const torchName = name.split('.').map(torchSegment).join('.');
      visit(child, join(miePath, name), join(torchPath, torchName), ancestors);
    }
    ancestors.delete(current);
  };
  visit(module, '', '', new Set());
  if (prefix) {
    for (const entry of entries) {
      entry.torchName = prefix + entry.torchName;
      entry.aliases = entry.aliases.map((alias) => prefix + alias);
    }
  }
  return entries;
}

/**
 * The PyTorch state-dict layout of `module`: each PyTorch name with the MIE parameters it holds,
 * its shape and its aliases (for documentation, debugging and checking a PyTorch model's
 * `state_dict().keys()` against MIE's).
 */
export function torchStateDictLayout(module: Module, { prefix = '' }: TorchStateDictOptions = {}): TorchStateEntry[] {
  checkModule('torchStateDictLayout', module);
  checkPrefix('torchStateDictLayout', prefix);
  return layout(module, prefix).map(({ torchName, mieNames, shape, aliases }) => ({ torchName, mieNames, shape, aliases }));
}

/**
 * The module's parameters as a PyTorch state dict: PyTorch names, PyTorch layout, `in_proj_*`
 * concatenated from q, k, v, tied weights once. The tensors are new: the caller disposes them.
 * `writeSafetensors(exportTorchStateDict(model))` is a file that PyTorch loads with
 * `model.load_state_dict(safetensors.torch.load_file(path))`, and
 * `loadTorchStateDict(m, exportTorchStateDict(m))` changes nothing.
 */
export function exportTorchStateDict(module: Module, { prefix = '' }: TorchStateDictOptions = {}): Record<string, tf.Tensor> {
  checkModule('exportTorchStateDict', module);
  const entries = layout(module, checkPrefix('exportTorchStateDict', prefix));
  return tf.tidy(() => {
    const state: Record<string, tf.Tensor> = {};
    for (const { torchName, variables } of entries) {
      state[torchName] = variables.length === 1 ? tf.clone(variables[0]) : tf.concat(variables, 0); // q, k, v rows -> [3e, ...]
    }
    return state;
  });
}

const has = (state: object, key: string): boolean => Object.prototype.hasOwnProperty.call(state, key);

/**
 * Loads a PyTorch state dict (PyTorch names, as `readSafetensors(...).tensors`) into `module`,
 * following the naming rules of this file. Every key and shape is checked before anything is
 * written, so a failed load changes nothing; the `MieSerializationError` names every missing,
 * unexpected, mis-shaped or unusable key by its PyTorch name. Integer tensors are cast to float32.
 * The caller keeps (and disposes) the tensors of `state`.
 *
 * ```ts
 * const layer = new TransformerEncoderLayer({ dModel: 512, numHeads: 8, dropout: 0 });
 * loadTorchStateDict(layer, readSafetensors(bytes).tensors); // torch.nn.TransformerEncoderLayer(512, 8, dropout=0, batch_first=True)
 * ```
 */
export function loadTorchStateDict(
  module: Module,
  state: Record<string, tf.Tensor>,
  { strict = true, prefix = '' }: LoadTorchStateDictOptions = {},
): LoadStateDictResult {
  const where = 'loadTorchStateDict';
  checkModule(where, module);
  checkPrefix(where, prefix);
  if (typeof state !== 'object' || state === null || Array.isArray(state) || state instanceof tf.Tensor) {
    throw new MieConfigError(errorMessage(where, 'argument "state"', 'must be an object of PyTorch name -> tf.Tensor', state));
  }
  const entries = layout(module, prefix);
  const known = new Set(entries.flatMap((entry) => [entry.torchName, ...entry.aliases]));
  const problems: string[] = [];
  const usable = (key: string, shape: number[]): boolean => {
    const value = state[key];
    if (!(value instanceof tf.Tensor) || value.isDisposed) {
      problems.push(`"${key}" is not a live tensor (received ${describeValue(value)})`);
    } else if (!tf.util.arraysEqual(value.shape, shape)) {
      problems.push(`"${key}" has shape [${value.shape.join(', ')}], expected [${shape.join(', ')}]`);
    } else if (value.dtype === 'string' || value.dtype === 'complex64') {
      problems.push(`"${key}" has dtype ${value.dtype}, expected float32`);
    } else {
      return true;
    }
    return false;
  };
  const missingKeys: string[] = [];
  const sources: Array<[Entry, tf.Tensor]> = [];
  for (const entry of entries) {
    const present = [entry.torchName, ...entry.aliases].filter((key) => has(state, key));
    if (present.length === 0) {
      missingKeys.push(entry.torchName);
      continue;
    }
    if (!present.every((key) => usable(key, entry.shape))) continue;
    const [first, ...others] = present;
    // Tied in MIE (one variable) but given twice: only equal values can be loaded faithfully.
    for (const other of others) {
      const flag = tf.tidy(() => tf.any(tf.notEqual(tf.cast(state[first], 'float32'), tf.cast(state[other], 'float32'))));
      let differs: number;
      try {
        differs = readSync(flag, 'loadTorchStateDict', 'a cpu or wasm backend to import the state dict, then switch backends')[0];
      } finally {
        flag.dispose();
      }
      if (differs) problems.push(`"${other}" differs from "${first}", but the module ties them (one shared weight)`);
    }
    sources.push([entry, state[first]]);
  }
  const unexpectedKeys = Object.keys(state).filter((key) => key.startsWith(prefix) && !known.has(key));
  if (strict) {
    if (missingKeys.length) problems.push(`missing keys: ${listForMessage(missingKeys.map((k) => describeValue(k)))}`);
    if (unexpectedKeys.length) problems.push(`unexpected keys: ${listForMessage(unexpectedKeys.map((k) => describeValue(k)))}`);
  }
  if (problems.length) {
    throw new MieSerializationError(`${where}(${module.constructor.name}): ${problems.join('; ')}.`);
  }
  tf.tidy(() => {
    for (const [{ variables }, value] of sources) {
      const sizes = variables.map((v) => v.shape[0]);
      const parts = variables.length === 1 ? [value] : tf.split(value, sizes, 0); // in_proj_* [3e, ...] -> q, k, v rows
      variables.forEach((variable, i) => {
        // Assigning a variable its own data would free that data first.
        if (parts[i].dataId === variable.dataId) return;
        variable.assign(parts[i].dtype === variable.dtype ? parts[i] : tf.cast(parts[i], variable.dtype));
      });
    }
  });
  return { missingKeys, unexpectedKeys };
}

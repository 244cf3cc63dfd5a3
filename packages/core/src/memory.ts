/**
 * Memory the active backend can still give, and refusal of requests that would exceed it.
 *
 * Exhausting memory is not recoverable on every backend: the wasm backend's heap has a hard
 * limit (4 GiB), and there a failed allocation is either written through as if it had succeeded
 * (corrupting other tensors) or aborts the module, after which every op fails. So MIE refuses a
 * call whose working set would not fit, with a {@link MieResourceError}, before it allocates:
 *
 * - modules estimate what a call needs (a decoder's caches, a batch of attention scores) and call
 *   {@link checkAllocation};
 * - on wasm, every allocation of the backend is also checked where it happens: a request of
 *   4 GiB or more (which the 32-bit allocator would silently truncate) and a failed one throw a
 *   `MieResourceError` instead of returning a bad address (see {@link guardWasmAllocations}).
 *
 * The limit: `setMemoryLimit(bytes)` or `MIE_MEMORY_LIMIT` (bytes, or with a K/M/G suffix) when
 * set; otherwise the wasm heap's 4 GiB, or 80% of the machine's (or container's) memory for the
 * JavaScript backends (cpu, tensorflow) in Node; unlimited on GPU backends, whose drivers report
 * their own exhaustion.
 */
import { MieConfigError, MieResourceError } from './errors';
import { environmentVariable, hostMemory, residentMemory } from './host';
import { tf } from './tfjs';

/** The wasm backend's maximum heap (its build's MAXIMUM_MEMORY). */
export const WASM_HEAP_BYTES = 2 ** 32;
/** Headroom kept free on the wasm heap for kernels' scratch space and allocator overhead. */
const WASM_RESERVE_BYTES = 256 * 1024 * 1024;
/** Share of the machine's memory the JavaScript backends may use. */
const HOST_SHARE = 0.8;

let userLimit: number | null | undefined;

function parseLimit(value: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$/i.exec(value);
  if (!match) throw new MieConfigError(`MIE_MEMORY_LIMIT must be a number of bytes, optionally with a K, M, G or T suffix. Received: ${JSON.stringify(value.slice(0, 40))}.`);
  const scale = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 }[match[2].toLowerCase() as '' | 'k' | 'm' | 'g' | 't'];
  return Number(match[1]) * scale;
}

function configuredLimit(): number | null {
  if (userLimit === undefined) {
    const env = environmentVariable('MIE_MEMORY_LIMIT');
    userLimit = env ? parseLimit(env) : null;
  }
  return userLimit;
}

/**
 * Sets the most memory (bytes) MIE lets the active backend hold before it refuses a call with a
 * `MieResourceError`, or `null` for the default (see the module comment).
 */
export function setMemoryLimit(bytes: number | null): void {
  if (bytes !== null && (typeof bytes !== 'number' || !(bytes > 0))) {
    throw new MieConfigError(`setMemoryLimit: the limit must be a positive number of bytes or null. Received: ${String(bytes)}.`);
  }
  userLimit = bytes;
}

/** What {@link memoryStatus} reports. */
export interface MemoryStatus {
  backend: string;
  /** The most the backend may hold (bytes). */
  limit: number;
  /** What it holds now (bytes). */
  used: number;
  /** `limit - used`, at least 0. */
  available: number;
}

/** The memory of the active backend: its limit, what is used, what is left. */
export function memoryStatus(): MemoryStatus {
  const backend = tf.getBackend() ?? 'none';
  const tensorBytes = tf.memory().numBytes;
  const configured = configuredLimit();
  let limit: number;
  let used: number;
  if (backend === 'wasm') {
    guardWasmAllocations(tf.backend());
    limit = Math.min(configured ?? Infinity, WASM_HEAP_BYTES - WASM_RESERVE_BYTES);
    used = tensorBytes;
  } else if (backend === 'cpu' || backend === 'tensorflow') {
    const host = hostMemory();
    limit = configured ?? (host !== undefined ? HOST_SHARE * host : Infinity);
    used = host !== undefined ? (residentMemory() ?? tensorBytes) : tensorBytes;
  } else {
    limit = configured ?? Infinity;
    used = tensorBytes;
  }
  return { backend, limit, used, available: Math.max(0, limit - used) };
}

function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes)) return `${bytes} bytes`;
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${Math.round(value)} bytes` : `${value.toFixed(value >= 100 ? 0 : 1)} ${units[unit]}`;
}

/**
 * Throws a {@link MieResourceError} when `bytes` more would not fit in what the active backend has
 * left: `module: <what> needs 12.0 GiB, but the wasm backend has 3.5 GiB left of its 3.8 GiB`.
 * `what` names the request (`"numBeams 1000000 x batch 1"`, `"attention scores [60000, 4, 64, 64]"`).
 */
export function checkAllocation(module: string, what: string, bytes: number): void {
  if (!(bytes >= 0)) bytes = Infinity; // NaN from absurd sizes
  const { backend, limit, available } = memoryStatus();
  if (bytes <= available) return;
  throw new MieResourceError(
    `${module}: ${what} needs ${formatBytes(bytes)}, but the ${backend} backend has ${formatBytes(available)} left of its ${formatBytes(limit)} limit. ` +
      'Use a smaller batch, fewer beams or shorter sequences (the limit is set by setMemoryLimit or MIE_MEMORY_LIMIT).',
  );
}

/** The bytes of a float32 tensor of `shape` (Infinity when the product is not a safe number). */
export function float32Bytes(...shape: number[]): number {
  const bytes = shape.reduce((product, dim) => product * dim, 4);
  return Number.isSafeInteger(bytes) ? bytes : Infinity;
}

interface EmscriptenHeap {
  _malloc(bytes: number): number;
  asm?: { malloc?: (bytes: number) => number };
  [guarded]?: true;
}
const guarded: unique symbol = Symbol('mie allocation guard');

/**
 * Makes the wasm backend's allocator refuse instead of corrupting: a request of 4 GiB or more
 * (truncated to 32 bits by the allocator) or one that fails (address 0) throws a
 * `MieResourceError` before the backend records the tensor, so the heap and every other tensor
 * stay intact. Idempotent.
 */
export function guardWasmAllocations(backend: unknown): void {
  const heap = (backend as { wasm?: EmscriptenHeap } | null)?.wasm;
  if (!heap || typeof heap._malloc !== 'function' || heap[guarded]) return;
  // Emscripten's `_malloc` rebinds itself to the raw export on its first call (which would drop a
  // wrapper): call the export directly.
  const exported = heap.asm?.malloc;
  const malloc = typeof exported === 'function' ? exported : heap._malloc.bind(heap);
  heap._malloc = (bytes: number): number => {
    if (bytes >= WASM_HEAP_BYTES) {
      throw new MieResourceError(`wasm backend: an allocation of ${formatBytes(bytes)} exceeds the ${formatBytes(WASM_HEAP_BYTES)} heap; nothing was allocated and the backend is unchanged.`);
    }
    const address = malloc(bytes);
    if (address === 0 && bytes > 0) {
      throw new MieResourceError(`wasm backend: the heap is full (an allocation of ${formatBytes(bytes)} failed); nothing was allocated and the backend is unchanged. Free tensors or use smaller inputs.`);
    }
    return address;
  };
  heap[guarded] = true;
}

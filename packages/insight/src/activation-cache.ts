/** The activations a run recorded at hook points, by name (see {@link runWithCache}). */
import { MieConfigError, describeValue, listForMessage, tf } from '@mie/core';

/**
 * Activations by hook point name. A point computed several times in one run (each step of a
 * cached generation) keeps every call, in order: `get(name)` is the last, `getAll(name)` all of
 * them. The tensors belong to the cache: read them, don't dispose them; `dispose()` frees all.
 */
export class ActivationCache {
  readonly #entries = new Map<string, tf.Tensor[]>();
  #disposed = false;

  /** Records a copy of `tensor` under `name` (used by {@link runWithCache}). */
  record(name: string, tensor: tf.Tensor): void {
    this.#checkLive('record');
    const copy = tf.keep(tf.clone(tensor));
    const calls = this.#entries.get(name);
    if (calls) calls.push(copy);
    else this.#entries.set(name, [copy]);
  }

  /** The names recorded, in the order they were first computed. */
  names(): string[] {
    this.#checkLive('names');
    return [...this.#entries.keys()];
  }

  /** Whether `name` was recorded. */
  has(name: string): boolean {
    this.#checkLive('has');
    return this.#entries.has(name);
  }

  /** How many times `name` was computed (0 if never). */
  calls(name: string): number {
    this.#checkLive('calls');
    return this.#entries.get(name)?.length ?? 0;
  }

  /** The activation at `name`: its last call, or call `call` (0-based; negative counts from the end). */
  get(name: string, { call = -1 }: { call?: number } = {}): tf.Tensor {
    const calls = this.getAll(name);
    const index = call < 0 ? calls.length + call : call;
    if (!Number.isInteger(call) || index < 0 || index >= calls.length) {
      throw new MieConfigError(`ActivationCache.get: call ${describeValue(call)} of ${describeValue(name)} does not exist; it was computed ${calls.length} time${calls.length === 1 ? '' : 's'}.`);
    }
    return calls[index];
  }

  /** Every call's activation at `name`, in order. */
  getAll(name: string): readonly tf.Tensor[] {
    this.#checkLive('get');
    const calls = this.#entries.get(name);
    if (!calls) {
      const names = this.names();
      throw new MieConfigError(
        `ActivationCache.get: ${describeValue(name)} was not recorded; ${names.length ? `the cache holds ${names.length} names (${listForMessage(names.slice(0, 3))}, ...)` : 'the cache is empty'}.`,
      );
    }
    return calls;
  }

  /** Whether `dispose()` was called. */
  get isDisposed(): boolean {
    return this.#disposed;
  }

  /** Frees every recorded tensor. Idempotent. */
  dispose(): void {
    for (const calls of this.#entries.values()) tf.dispose(calls);
    this.#entries.clear();
    this.#disposed = true;
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  #checkLive(method: string): void {
    if (this.#disposed) throw new MieConfigError(`ActivationCache.${method}: the cache was disposed.`);
  }
}

/**
 * A persistent pool of threads for the SIMD GEMM (native/gemm.c). One call is split into blocks
 * of rows, of columns or of batch elements; the calling thread computes the first block and each
 * worker one of the others, handed over through a control block of shared memory with `Atomics`
 * store/notify and wait, so a call costs no message passing and no allocation.
 *
 * Workers run the build of gemm.c that imports a shared memory. When the tfjs wasm backend's
 * heap is itself shared (its threaded build: a cross-origin-isolated page, or `MIE_WASM_THREADS`)
 * they compute on it in place. The default single-threaded build has a private heap no other
 * thread can see: the operands the workers read are then copied into the pool's own shared
 * memory and their blocks of the output copied back (a few percent of the product's time; the
 * calling thread's block is computed in place). Why hand-written: the npm worker pools (piscina,
 * workerpool, threads.js) hand tasks over with `postMessage`, which costs 50-100 µs per task on
 * this machine, more than a whole GEMM block of a small transformer.
 *
 * Products too small to gain are left single-threaded by the caller (simd-gemm.ts).
 */

/** A started worker, as gemm-workers.ts (Node) or gemm-workers-browser.ts makes one. */
export interface GemmWorker {
  post(message: unknown): void;
  onMessage(listener: (message: unknown) => void): void;
  onError(listener: (error: Error) => void): void;
  /** Lets the process exit while the worker runs (after its listeners are attached). */
  unref(): void;
  terminate(): void;
}

/** `gemm` of native/gemm.c: pointers are byte offsets, leading dimensions in elements. */
export type GemmFunction = (m: number, n: number, k: number, a: number, lda: number, ta: number, b: number, ldb: number, tb: number, c: number, ldc: number, work: number) => void;

/** `gemv_t` of native/gemm.c: `c[m, n] = a[m, k] w[n, k]ᵀ`, pointers in bytes, strides in elements. */
export type GemvFunction = (m: number, n: number, k: number, a: number, lda: number, w: number, ldw: number, c: number, ldc: number) => void;

/** One product of a few rows with a weight `w [n, k]` (row-major, contiguous), pointers in bytes. */
export interface GemvCall {
  m: number;
  n: number;
  k: number;
  a: number;
  w: number;
  c: number;
  /**
   * The weight's identity (its tensor's data id: tensor data never changes). With a private heap
   * the workers' rows of `w` are copied into the pool's memory once per key and kept while
   * `alive(key)` holds, so that a decoding step reads each weight once, not three times.
   */
  key: object;
}

/** One batched product: `count` GEMMs, pointers in bytes, leading dimensions and batch strides in elements. */
export interface GemmCall {
  m: number;
  n: number;
  k: number;
  a: number;
  lda: number;
  ta: boolean;
  b: number;
  ldb: number;
  tb: boolean;
  c: number;
  ldc: number;
  count: number;
  strideA: number;
  strideB: number;
  strideC: number;
}

/** One thread's block: its sizes and where it starts, in elements from the call's pointers. */
interface Block {
  count: number;
  m: number;
  n: number;
  a: number;
  b: number;
  c: number;
}

/** The WebAssembly JS API (a Node global; @types/node 20 does not declare it). */
export interface SharedMemory {
  readonly buffer: ArrayBufferLike;
  grow(pages: number): number;
}
interface WasmApi {
  Memory: new (descriptor: { initial: number; maximum: number; shared: boolean }) => SharedMemory;
}
const wasmApi = (): WasmApi => (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

// The control block: SLOT int32s per worker.
const SLOT = 32; // 128 bytes: one cache line pair per worker, no false sharing
const SEQ = 0; // the caller's task number (incremented to hand over a task)
const DONE = 1; // the last task number the worker finished
const STATUS = 2; // 0, or 1 when the task threw
const COUNT = 3; // products in the task; -1 asks the worker to stop
const PARAMS = 4; // m n k a lda ta b ldb tb c ldc work strideA strideB strideC (bytes for pointers and strides)
const OP = PARAMS + 15; // 0: gemm, 1: gemv_t (m n k a lda - w ldw - c ldc)
/**
 * The last task number claimed, by the worker (to compute it) or by the caller (to compute it
 * itself: a worker that has not started its block when the caller has finished its own, on a
 * core busy with another process, would otherwise hold the call up for a scheduler slice).
 * Whoever moves it from task - 1 to task computes the block.
 */
const CLAIM = PARAMS + 16;

/**
 * How long a worker keeps polling for the next task before it sleeps in `Atomics.wait`, in ms.
 * Waking a sleeping thread (`Atomics.notify`, a futex wake) took 130-250 µs on this machine, more
 * than a whole block of a small product, while a training step hands the pool a product every
 * 0.1-1 ms: polling through such gaps keeps the hand-over at a few µs. After this long idle the
 * worker sleeps and costs nothing.
 */
const SPIN_MS = 2;
/** Polls by the calling thread before it sleeps waiting for a worker. */
const SPINS = 20000;

/**
 * The worker's script: instantiates the module on the shared memory, then waits for tasks. It
 * runs under Node's worker_threads (evaluated, `require` available) and in browser workers.
 */
const WORKER_SOURCE = `'use strict';
const nodePort = typeof require === 'function' ? require('node:worker_threads').parentPort : null;
const post = (message) => (nodePort ? nodePort.postMessage(message) : self.postMessage(message));
const start = ({ module, memory, control, slot, work }) => {
  const { gemm, gemv_t } = new WebAssembly.Instance(module, { env: { memory } }).exports;
  const c = new Int32Array(control);
  const base = slot * ${SLOT};
  post('ready');
  let seen = 0;
  for (;;) {
    for (let spins = 0, since = performance.now(); Atomics.load(c, base + ${SEQ}) === seen; ) {
      if ((++spins & 1023) === 0 && performance.now() - since > ${SPIN_MS}) {
        Atomics.wait(c, base + ${SEQ}, seen);
        since = performance.now();
      }
    }
    seen = Atomics.load(c, base + ${SEQ});
    const count = c[base + ${COUNT}];
    if (count < 0) return;
    if (Atomics.compareExchange(c, base + ${CLAIM}, (seen - 1) | 0, seen) !== ((seen - 1) | 0)) {
      Atomics.store(c, base + ${DONE}, seen); // the caller took the block back
      continue;
    }
    let status = 0;
    try {
      const p = base + ${PARAMS};
      const m = c[p], n = c[p + 1], k = c[p + 2], lda = c[p + 4], ta = c[p + 5], ldb = c[p + 7], tb = c[p + 8], ldc = c[p + 10];
      const sa = c[p + 12], sb = c[p + 13], sc = c[p + 14];
      let a = c[p + 3] >>> 0, b = c[p + 6] >>> 0, out = c[p + 9] >>> 0;
      if (c[base + ${OP}] === 1) gemv_t(m, n, k, a, lda, b, ldb, out, ldc);
      else for (let i = 0; i < count; i++, a += sa, b += sb, out += sc) gemm(m, n, k, a, lda, ta, b, ldb, tb, out, ldc, work);
    } catch (error) {
      status = 1;
    }
    c[base + ${STATUS}] = status;
    Atomics.store(c, base + ${DONE}, seen);
    Atomics.notify(c, base + ${DONE});
  }
};
if (nodePort) nodePort.once('message', start);
else self.onmessage = (event) => { self.onmessage = null; start(event.data); };
`;

export interface GemmPoolOptions {
  /** The compiled shared-memory build of gemm.c. */
  module: object;
  /** Threads in all, the calling thread included (at least 2). */
  threads: number;
  /** Floats of scratch per thread (`work_floats()`). */
  workFloats: number;
  /**
   * The backend's heap when it is shared (workers compute on it in place), with an allocator for
   * the workers' scratch on it; omitted: the pool makes its own memory and copies operands.
   */
  inPlace?: { memory: SharedMemory; allocate(bytes: number): number };
  /** Starts a worker on a script (gemm-workers.ts). */
  startWorker(source: string): GemmWorker;
  /** Whether the calling thread may sleep in `Atomics.wait` (not a page's main thread). */
  mayBlock: boolean;
}

/**
 * Most bytes of weight copies {@link GemmPool.runGemv} keeps (copying mode): the workers' rows of
 * every weight a decoding step reads (52 MB for the design's example model on 2 threads, a
 * quarter of what XNNPACK's packed copies and their transposes took). Beyond it, products go
 * back to the single-threaded path.
 */
export const GEMV_CACHE_BYTES = 512 << 20;
/** Keys remembered as seen once, at most (a fresh set after that). */
const SEEN_LIMIT = 4096;

/** A worker that has not started after this long is given up (the GEMM stays single-threaded). */
const START_TIMEOUT_MS = 10_000;

const PAGE = 65536;
const MAX_PAGES = 65536; // 4 GiB: the pool's memory reserves address space only as it grows

/** The GEMM thread pool (see the file's comment). */
export class GemmPool {
  /** Threads in all, the calling thread included. */
  readonly threads: number;
  /** Whether workers compute on the backend's heap (no copies). */
  readonly inPlace: boolean;
  /** Resolves to true once every worker is running, false when one failed to start. */
  readonly ready: Promise<boolean>;
  private readonly memory: SharedMemory;
  private readonly control: Int32Array;
  private readonly workers: GemmWorker[] = [];
  private readonly workOffsets: number[] = [];
  private readonly sent: number[] = [];
  private readonly mayBlock: boolean;
  /** First byte of the pool's memory for the weight copies of {@link runGemv} (copying mode). */
  private readonly cacheBase: number;
  /** First byte free for a call's operand copies (copying mode): after the weight copies. */
  private operandBase: number;
  /** The workers' rows of each weight, copied (copying mode), by key; in insertion order. */
  private readonly weights = new Map<object, { to: number; floats: number }>();
  /** Keys seen once: a weight is copied the second time it is used (an activation never is). */
  private readonly seen = new Set<object>();
  private running = false;
  private failed: string | null = null;

  constructor(options: GemmPoolOptions) {
    this.threads = options.threads;
    this.mayBlock = options.mayBlock;
    this.inPlace = options.inPlace !== undefined;
    const workers = options.threads - 1;
    const workBytes = options.workFloats * 4;
    if (options.inPlace) {
      this.memory = options.inPlace.memory;
      for (let i = 0; i < workers; i++) {
        const offset = options.inPlace.allocate(workBytes);
        if (!offset) throw new Error('GEMM pool: could not allocate the workers\' packing scratch');
        this.workOffsets.push(offset);
      }
      this.operandBase = 0;
      this.cacheBase = 0;
    } else {
      this.operandBase = workers * workBytes;
      this.cacheBase = this.operandBase;
      this.memory = new (wasmApi().Memory)({ initial: Math.ceil(this.operandBase / PAGE) + 16, maximum: MAX_PAGES, shared: true });
      for (let i = 0; i < workers; i++) this.workOffsets.push(i * workBytes);
    }
    this.control = new Int32Array(new SharedArrayBuffer(4 * SLOT * Math.max(1, workers)));
    const started: Array<Promise<boolean>> = [];
    for (let i = 0; i < workers; i++) {
      const worker = options.startWorker(WORKER_SOURCE);
      this.workers.push(worker);
      this.sent.push(0);
      started.push(
        new Promise<boolean>((resolve) => {
          worker.onMessage((message) => resolve(message === 'ready'));
          worker.onError((error) => {
            this.failed ??= `a GEMM worker failed: ${error.message}`;
            resolve(false);
          });
        }),
      );
      worker.post({ module: options.module, memory: this.memory, control: this.control.buffer, slot: i, work: this.workOffsets[i] });
    }
    // Referenced until they run (the caller awaits `ready`), then not: an idle pool never keeps a process alive.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<boolean[]>((resolve) => {
      timer = setTimeout(() => resolve([false]), START_TIMEOUT_MS);
    });
    this.ready = Promise.race([Promise.all(started), timeout]).then((all) => {
      clearTimeout(timer);
      for (const worker of this.workers) worker.unref();
      const ok = all.every(Boolean);
      if (!ok) this.failed ??= 'a GEMM worker did not start';
      return ok;
    });
  }

  /** Whether the pool can take a call now (started, not failed, not already inside a call). */
  get usable(): boolean {
    return this.failed === null && !this.running;
  }

  /**
   * Computes `call`: the calling thread's block with `own` (its own instance of gemm.c, on the
   * backend's heap, with its scratch `ownWork`), the others on the workers. Returns false, having
   * computed nothing, when the call cannot be split or its operands do not fit the pool's memory;
   * the caller then computes it alone.
   */
  run(call: GemmCall, own: GemmFunction, ownWork: number, heap: () => ArrayBufferLike): boolean {
    if (!this.usable) return false;
    const idle = this.idleWorkers();
    const blocks = splitCall(call, 1 + idle.length);
    if (blocks.length < 2) return false;
    const workerBlocks = blocks.slice(1);
    let plan: CopyPlan | null = null;
    if (!this.inPlace) {
      plan = this.planCopies(call, workerBlocks);
      if (!plan) return false;
      copyIn(plan, heap(), this.memory.buffer);
    }
    this.running = true;
    let taken = new Set<number>(); // worker blocks the calling thread took back
    try {
      const c = this.control;
      workerBlocks.forEach((block, i) => {
        const w = idle[i];
        const base = w * SLOT;
        const p = base + PARAMS;
        const at = (pointer: number, elements: number, copied?: number) => (copied === undefined ? pointer + 4 * elements : copied + 4 * elements);
        c[COUNT + base] = block.count;
        c[p] = block.m;
        c[p + 1] = block.n;
        c[p + 2] = call.k;
        c[p + 3] = plan ? at(plan.a.to, block.a - plan.a.from) : at(call.a, block.a);
        c[p + 4] = call.lda;
        c[p + 5] = call.ta ? 1 : 0;
        c[p + 6] = plan ? at(plan.b.to, block.b - plan.b.from) : at(call.b, block.b);
        c[p + 7] = call.ldb;
        c[p + 8] = call.tb ? 1 : 0;
        c[p + 9] = plan ? at(plan.c.to, block.c - plan.c.from) : at(call.c, block.c);
        c[p + 10] = call.ldc;
        c[p + 11] = this.workOffsets[w];
        c[p + 12] = 4 * call.strideA;
        c[p + 13] = 4 * call.strideB;
        c[p + 14] = 4 * call.strideC;
        c[base + OP] = 0;
        this.publish(w);
      });
      const compute = (block: Block) => {
        for (let i = 0; i < block.count; i++) {
          own(block.m, block.n, call.k, call.a + 4 * (block.a + i * call.strideA), call.lda, call.ta ? 1 : 0, call.b + 4 * (block.b + i * call.strideB), call.ldb, call.tb ? 1 : 0, call.c + 4 * (block.c + i * call.strideC), call.ldc, ownWork);
        }
      };
      compute(blocks[0]);
      taken = this.collect(idle.slice(0, workerBlocks.length), (i) => compute(workerBlocks[i])); // in place, on the backend's heap
    } finally {
      this.running = false;
    }
    if (plan) copyOut(plan, call, workerBlocks.filter((_, i) => !taken.has(i)), this.memory.buffer, heap());
    return true;
  }

  /**
   * Computes a {@link GemvCall} split by columns (rows of `w`): the calling thread's with `own` on
   * the backend's heap, the others on the workers. With a private heap the workers read their
   * rows of `w` from a copy kept per `call.key` (made the second time a key is used, while
   * `alive(key)`; at most {@link GEMV_CACHE_BYTES} in all) and `a` from a copy made per call.
   * Returns false, having computed nothing, when it does not split or its weight is not kept.
   */
  runGemv(call: GemvCall, own: GemvFunction, heap: () => ArrayBufferLike, alive: (key: object) => boolean): boolean {
    if (!this.usable) return false;
    const idle = this.idleWorkers();
    const ranges = columnRanges(call.n, 1 + idle.length);
    if (ranges.length < 2) return false;
    const first = ranges[1][0]; // the workers' rows of w: [first, n)
    let w = call.w;
    let a = call.a;
    let c = call.c;
    if (!this.inPlace) {
      const kept = this.keptWeight(call, first, heap, alive);
      if (kept === null) return false;
      w = kept - 4 * first * call.k; // so that row j of w is at w + 4 j k for j >= first
      // x and the workers' output columns after the weights, 16-byte aligned.
      a = align16(this.operandBase);
      c = align16(a + 4 * call.m * call.k);
      if (!this.ensure(c + 4 * call.m * call.n)) return false;
      new Float32Array(this.memory.buffer, a, call.m * call.k).set(new Float32Array(heap(), call.a, call.m * call.k));
    }
    this.running = true;
    let taken = new Set<number>(); // worker ranges the calling thread took back
    try {
      const control = this.control;
      ranges.slice(1).forEach(([lo, hi], i) => {
        const worker = idle[i];
        const base = worker * SLOT;
        const p = base + PARAMS;
        control[COUNT + base] = 1;
        control[OP + base] = 1;
        control[p] = call.m;
        control[p + 1] = hi - lo;
        control[p + 2] = call.k;
        control[p + 3] = a;
        control[p + 4] = call.k;
        control[p + 6] = w + 4 * lo * call.k;
        control[p + 7] = call.k;
        control[p + 9] = c + 4 * lo;
        control[p + 10] = call.n;
        this.publish(worker);
      });
      own(call.m, ranges[0][1], call.k, call.a, call.k, call.w, call.k, call.c, call.n);
      taken = this.collect(idle.slice(0, ranges.length - 1), (i) => {
        const [lo, hi] = ranges[i + 1]; // in place, from the backend's heap
        own(call.m, hi - lo, call.k, call.a, call.k, call.w + 4 * lo * call.k, call.k, call.c + 4 * lo, call.n);
      });
    } finally {
      this.running = false;
    }
    if (!this.inPlace) {
      const from = new Float32Array(this.memory.buffer, c, call.m * call.n);
      const to = new Float32Array(heap(), call.c, call.m * call.n);
      ranges.forEach(([lo, hi], r) => {
        if (r === 0 || taken.has(r - 1)) return;
        for (let i = 0; i < call.m; i++) to.set(from.subarray(i * call.n + lo, i * call.n + hi), i * call.n + lo);
      });
    }
    return true;
  }

  /**
   * After the calling thread's own part: each of `workers`' parts (in order) is taken back and
   * computed by `computeOwn(part)` when its worker has not started it, else waited for. Returns
   * the parts taken back; throws, failing the pool, when a worker threw.
   */
  private collect(workers: number[], computeOwn: (part: number) => void): Set<number> {
    const taken = new Set<number>();
    let status = 0;
    workers.forEach((worker, part) => {
      if (this.takeBack(worker)) {
        computeOwn(part);
        taken.add(part);
        return;
      }
      this.waitFor(worker);
      status |= this.control[worker * SLOT + STATUS];
    });
    if (status !== 0) {
      this.failed = 'a GEMM worker threw';
      throw new Error('simd GEMM: a worker thread failed to compute its block');
    }
    return taken;
  }

  /** Bytes of the pool's memory the weight copies use (tests). */
  get keptWeightBytes(): number {
    let floats = 0;
    for (const entry of this.weights.values()) floats += entry.floats;
    return 4 * floats;
  }

  /** Byte offset of the copy of rows `[first, n)` of `call.w`, copying it if needed; null when not kept. */
  private keptWeight(call: GemvCall, first: number, heap: () => ArrayBufferLike, alive: (key: object) => boolean): number | null {
    const floats = (call.n - first) * call.k;
    const hit = this.weights.get(call.key);
    if (hit && hit.floats === floats) return hit.to;
    if (!this.seen.has(call.key)) {
      // Forget freed keys only when the set is full: a sweep per miss would cost more than the product.
      if (this.seen.size >= SEEN_LIMIT) for (const key of this.seen) if (!alive(key)) this.seen.delete(key);
      if (this.seen.size >= SEEN_LIMIT) this.seen.clear();
      this.seen.add(call.key);
      return null;
    }
    this.seen.delete(call.key);
    // Drop the copies of freed weights, then pack the rest down (moving memory within the pool).
    let end = this.cacheBase;
    for (const [key, entry] of this.weights) {
      if (!alive(key) || key === call.key) {
        this.weights.delete(key);
        continue;
      }
      end = align16(end); // copies are 16-byte aligned, so packing only ever moves one down
      if (entry.to !== end) new Uint8Array(this.memory.buffer).copyWithin(end, entry.to, entry.to + 4 * entry.floats);
      entry.to = end;
      end += 4 * entry.floats;
    }
    const source = call.w + 4 * first * call.k;
    const to = align16(end);
    if (to + 4 * floats - this.cacheBase > GEMV_CACHE_BYTES || !this.ensure(to + 4 * floats)) {
      this.operandBase = end;
      return null;
    }
    new Float32Array(this.memory.buffer, to, floats).set(new Float32Array(heap(), source, floats));
    this.weights.set(call.key, { to, floats });
    this.operandBase = to + 4 * floats;
    return to;
  }

  /** Grows the pool's memory to at least `bytes`; false when it cannot. */
  private ensure(bytes: number): boolean {
    const needed = Math.ceil(bytes / PAGE);
    const have = this.memory.buffer.byteLength / PAGE;
    if (needed <= have) return true;
    if (needed > MAX_PAGES) return false;
    try {
      this.memory.grow(needed - have);
      return true;
    } catch {
      return false;
    }
  }

  /** Stops the workers (tests; a pool otherwise lives as long as its process). */
  dispose(): void {
    this.failed ??= 'disposed';
    this.workers.forEach((worker, w) => {
      const base = w * SLOT;
      this.control[base + COUNT] = -1;
      Atomics.store(this.control, base + SEQ, (this.sent[w] + 1) | 0);
      Atomics.notify(this.control, base + SEQ);
      worker.terminate();
    });
  }

  /** Workers that have acknowledged their last task (one whose block was taken back may not have yet). */
  private idleWorkers(): number[] {
    const idle: number[] = [];
    for (let w = 0; w < this.workers.length; w++) if (Atomics.load(this.control, w * SLOT + DONE) === this.sent[w]) idle.push(w);
    return idle;
  }

  /** Hands worker `w` the task whose parameters are in its slot. */
  private publish(w: number): void {
    this.sent[w] = (this.sent[w] + 1) | 0;
    Atomics.store(this.control, w * SLOT + SEQ, this.sent[w]);
    Atomics.notify(this.control, w * SLOT + SEQ);
  }

  /** Claims worker `w`'s current block for the calling thread; false when the worker has started it. */
  private takeBack(w: number): boolean {
    const task = this.sent[w];
    return Atomics.compareExchange(this.control, w * SLOT + CLAIM, (task - 1) | 0, task) === ((task - 1) | 0);
  }

  private waitFor(w: number): void {
    const c = this.control;
    const index = w * SLOT + DONE;
    const target = this.sent[w];
    for (let spins = 0; ; spins++) {
      const done = Atomics.load(c, index);
      if (done === target) return;
      if (this.mayBlock && spins > SPINS) Atomics.wait(c, index, done, 50);
    }
  }

  /** Where each operand's span goes in the pool's memory, growing it if needed; null if it cannot. */
  private planCopies(call: GemmCall, blocks: Block[]): CopyPlan | null {
    const spanA = union(blocks.map((b) => matrixSpan(b.a, call.ta ? call.k : b.m, call.ta ? b.m : call.k, call.lda, b.count, call.strideA)));
    const spanB = union(blocks.map((b) => matrixSpan(b.b, call.tb ? b.n : call.k, call.tb ? call.k : b.n, call.ldb, b.count, call.strideB)));
    const spanC = union(blocks.map((b) => matrixSpan(b.c, b.m, b.n, call.ldc, b.count, call.strideC)));
    let cursor = this.operandBase;
    // Same offset modulo 16 as the source, so the kernel's loads keep their alignment.
    const place = (pointer: number, span: [number, number]): Placement => {
      const source = pointer + 4 * span[0];
      cursor = Math.ceil(cursor / 16) * 16 + (source % 16);
      const placement = { from: span[0], to: cursor, floats: span[1] - span[0], source };
      cursor += 4 * placement.floats;
      return placement;
    };
    const a = place(call.a, spanA);
    const b = place(call.b, spanB);
    const c = place(call.c, spanC);
    const needed = Math.ceil(cursor / PAGE);
    const have = this.memory.buffer.byteLength / PAGE;
    if (needed > have) {
      if (needed > MAX_PAGES) return null;
      try {
        this.memory.grow(needed - have);
      } catch {
        return null; // no address space for it: computed single-threaded
      }
    }
    return { a, b, c };
  }
}

interface Placement {
  /** First element of the span, counted from the call's pointer. */
  from: number;
  /** Byte offset of the copy in the pool's memory. */
  to: number;
  floats: number;
  /** Byte offset of the span in the backend's heap. */
  source: number;
}
interface CopyPlan {
  a: Placement;
  b: Placement;
  c: Placement;
}

/** Elements `[first, end)` a stored matrix block touches: `rows` x `cols` with leading dimension `ld`, `count` of them `stride` apart. */
function matrixSpan(first: number, rows: number, cols: number, ld: number, count: number, stride: number): [number, number] {
  return [first, first + (count - 1) * stride + (rows - 1) * ld + cols];
}

function union(spans: Array<[number, number]>): [number, number] {
  return [Math.min(...spans.map((s) => s[0])), Math.max(...spans.map((s) => s[1]))];
}

function copyIn(plan: CopyPlan, heap: ArrayBufferLike, pool: ArrayBufferLike): void {
  for (const operand of [plan.a, plan.b]) {
    new Float32Array(pool, operand.to, operand.floats).set(new Float32Array(heap, operand.source, operand.floats));
  }
}

/** Copies each worker block's output (and only it: blocks of columns interleave with the caller's) back to the heap. */
function copyOut(plan: CopyPlan, call: GemmCall, blocks: Block[], pool: ArrayBufferLike, heap: ArrayBufferLike): void {
  const from = new Float32Array(pool, plan.c.to, plan.c.floats);
  const to = new Float32Array(heap, plan.c.source, plan.c.floats);
  for (const block of blocks) {
    for (let i = 0; i < block.count; i++) {
      const start = block.c + i * call.strideC - plan.c.from;
      if (block.n === call.ldc) {
        to.set(from.subarray(start, start + block.m * block.n), start);
      } else {
        for (let r = 0; r < block.m; r++) {
          const row = start + r * call.ldc;
          to.set(from.subarray(row, row + block.n), row);
        }
      }
    }
  }
}

const align16 = (offset: number) => Math.ceil(offset / 16) * 16;

/** `[lo, hi)` columns per thread for {@link GemmPool.runGemv}, the calling thread's first; multiples of 4. */
function columnRanges(n: number, threads: number): Array<[number, number]> {
  const units = Math.ceil(n / 4);
  const parts = Math.min(threads, units);
  const out: Array<[number, number]> = [];
  for (let t = 0; t < parts; t++) {
    const lo = Math.min(n, Math.round((t * units) / parts) * 4);
    const hi = Math.min(n, Math.round(((t + 1) * units) / parts) * 4);
    if (hi > lo) out.push([lo, hi]);
  }
  return out;
}

/** Rows per block are a multiple of this, columns of NR (the kernel's 16-column panels). */
const ROW_ALIGN = 8;
const NR = 16;

/**
 * The call's blocks, the calling thread's first: batch elements when there are at least as many
 * as threads, else rows or columns, whichever dimension is larger.
 */
export function splitCall(call: GemmCall, threads: number): Block[] {
  const blocks: Block[] = [];
  const ranges = (size: number, align: number): Array<[number, number]> => {
    const units = Math.ceil(size / align);
    const parts = Math.min(threads, units);
    const out: Array<[number, number]> = [];
    for (let t = 0; t < parts; t++) {
      const lo = Math.min(size, Math.round((t * units) / parts) * align);
      const hi = Math.min(size, Math.round(((t + 1) * units) / parts) * align);
      if (hi > lo) out.push([lo, hi]);
    }
    return out;
  };
  if (call.count >= threads) {
    for (const [lo, hi] of ranges(call.count, 1)) {
      blocks.push({ count: hi - lo, m: call.m, n: call.n, a: lo * call.strideA, b: lo * call.strideB, c: lo * call.strideC });
    }
  } else if (call.m >= call.n) {
    for (const [lo, hi] of ranges(call.m, ROW_ALIGN)) {
      blocks.push({ count: call.count, m: hi - lo, n: call.n, a: call.ta ? lo : lo * call.lda, b: 0, c: lo * call.ldc });
    }
  } else {
    for (const [lo, hi] of ranges(call.n, NR)) {
      blocks.push({ count: call.count, m: call.m, n: hi - lo, a: 0, b: call.tb ? lo * call.ldb : lo, c: lo });
    }
  }
  return blocks;
}

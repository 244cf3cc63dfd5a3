import { childReport, runWasmChild } from './__tests__/wasm-child';
import { MieBackendError } from './errors';
import { wasmThreadsFromEnvironment } from './wasm-threads';

describe('threaded wasm (MIE_WASM_THREADS)', () => {
  it('runs the threaded module with the requested threads, computes exact products, and the process exits by itself', () => {
    // The SIMD GEMM's pool computes on the threaded build's shared heap in place.
    const result = runWasmChild({ MIE_WASM_THREADS: '2', MIE_THREADS: '2' });
    // A worker left referenced would keep the process alive until the timeout kills it.
    expect(result.signal).toBeNull();
    const report = childReport(result); // names the status and stderr when the child printed no report
    expect(result.stderr).not.toMatch(/Error/);
    expect(result.status).toBe(0);
    expect(report.threads).toBe(2);
    expect(report.matmul).toBe('simd');
    for (const key of ['plain', 'transposed', 'batched']) expect(report[key]).toBeLessThan(1e-4);
  });

  it('stays single-threaded without the variable', () => {
    const result = runWasmChild({ MIE_WASM_THREADS: '' });
    expect(result.status).toBe(0);
    expect(childReport(result).threads).toBe(1);
  });

  it('rejects a malformed thread count, naming the variable', () => {
    const previous = process.env.MIE_WASM_THREADS;
    try {
      for (const bad of ['two', '0', '1.5', '-2', '1000']) {
        process.env.MIE_WASM_THREADS = bad;
        expect(() => wasmThreadsFromEnvironment()).toThrow(MieBackendError);
        expect(() => wasmThreadsFromEnvironment()).toThrow(`MIE_WASM_THREADS environment variable must be an integer from 1 to 64. Received: "${bad}"`);
      }
      process.env.MIE_WASM_THREADS = '3';
      expect(wasmThreadsFromEnvironment()).toBe(3);
    } finally {
      if (previous === undefined) delete process.env.MIE_WASM_THREADS;
      else process.env.MIE_WASM_THREADS = previous;
    }
  });
});

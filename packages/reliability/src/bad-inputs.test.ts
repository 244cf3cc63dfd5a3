/**
 * Bad inputs to every public module: each row of BAD_INPUTS ends in the documented result, never a
 * raw tfjs error, and leaks no tensor. A property test throws random shapes and dtypes at every
 * module's arguments; the doc table is checked against the code table.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { MieError, checkFinite, setBackend, setSeed, tf } from '@mie/core';
import { BAD_INPUTS, MODULES, fixture, renderBadInputTable } from './bad-inputs';
import { REPO_ROOT, disposeResult, tensorsIn, testBackend } from './helpers';

beforeAll(async () => {
  await setBackend(testBackend());
  setSeed(11);
});

describe('the bad-input table', () => {
  it.each(BAD_INPUTS.map((c) => [`${c.module}: ${c.kind}`, c] as const))('%s', (_label, row) => {
    const model = fixture(row.module).make().eval();
    const args = row.args();
    const before = tf.memory().numTensors;
    const { outcome } = row;
    let result: unknown;
    let error: unknown;
    try {
      const forward = () => model.forward(...(args as never[]));
      result = 'error' in outcome && outcome.checkFinite ? checkFinite(model, forward) : forward();
    } catch (e) {
      error = e;
    }
    if ('returns' in outcome) {
      expect(error).toBeUndefined();
      const tensor = Array.isArray(result) ? result[0] : result;
      expect(tensor).toBeInstanceOf(tf.Tensor);
      expect((tensor as tf.Tensor).shape).toEqual(outcome.returns);
      disposeResult(result);
    } else {
      expect(error).toBeInstanceOf(MieError);
      const { name, message } = error as Error;
      expect(name).toBe(outcome.error);
      if (outcome.error === 'MieShapeError') expect(message.startsWith(`${outcome.names}:`)).toBe(true);
      else expect(message).toContain(outcome.names);
      expect(message).toContain(outcome.argument);
      // The message says what was received (a shape, a value or a count), not just "invalid";
      // for a misspelt option, which options there are.
      expect(message).toMatch(outcome.error === 'MieConfigError' ? /the options are|Received/ : /Received|\[|\d/);
    }
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose(tensorsIn(args));
    model.dispose();
  });

  it('is the table in docs/reliability.md', () => {
    const doc = fs.readFileSync(path.join(REPO_ROOT, 'docs/reliability.md'), 'utf8');
    const table = renderBadInputTable();
    if (process.env.MIE_UPDATE_DOCS === '1' && !doc.includes(table)) {
      const start = doc.indexOf('<!-- bad-inputs:start -->');
      const end = doc.indexOf('<!-- bad-inputs:end -->');
      fs.writeFileSync(path.join(REPO_ROOT, 'docs/reliability.md'), `${doc.slice(0, start)}<!-- bad-inputs:start -->\n${table}\n${doc.slice(end)}`);
      return;
    }
    // On failure: run `MIE_UPDATE_DOCS=1 pnpm test:reliability` to rewrite the doc's table.
    expect(doc).toContain(`<!-- bad-inputs:start -->\n${table}\n<!-- bad-inputs:end -->`);
  });

  it('covers every public module class', () => {
    expect(new Set(BAD_INPUTS.map((c) => c.module))).toEqual(new Set(MODULES.map((m) => m.name)));
  });
});

describe('random shapes and dtypes', () => {
  const dtypes = ['float32', 'int32', 'bool'] as const;
  const arbitraryTensor = fc.record({
    shape: fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 0, maxLength: 5 }),
    dtype: fc.constantFrom(...dtypes),
    value: fc.constantFrom(0, 1, 3, -1, 0.5, NaN),
  });

  it.each(MODULES.map((m) => [m.name, m] as const))('%s: every random argument is accepted or a MieError, with no leak', (_name, module) => {
    const model = module.make().eval();
    const arity = module.args().length;
    tf.dispose(tensorsIn(module.args()));
    fc.assert(
      fc.property(fc.integer({ min: 0, max: arity - 1 }), arbitraryTensor, (position, spec) => {
        const args = module.args();
        const replaced = args[position] as tf.Tensor;
        const value = spec.dtype === 'bool' ? spec.value !== 0 : spec.dtype === 'int32' ? Math.trunc(spec.value) || 0 : spec.value;
        args[position] = tf.fill(spec.shape, value as number, spec.dtype);
        replaced.dispose();
        const before = tf.memory().numTensors;
        try {
          disposeResult(model.forward(...(args as never[])));
        } catch (error) {
          if (!(error instanceof MieError)) {
            throw new Error(`${module.name}: argument ${position} ${spec.dtype}[${spec.shape}] raised a raw ${(error as Error).name}: ${(error as Error).message}`);
          }
        } finally {
          tf.dispose(tensorsIn(args));
        }
        expect(tf.memory().numTensors).toBe(before - tensorsIn(args).length);
      }),
      { seed: 8, numRuns: 60 },
    );
    model.dispose();
  });
});

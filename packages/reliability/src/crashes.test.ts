/**
 * Crashes during save and training, with real child processes killed by SIGKILL. The children
 * run fixtures/*.js on the built dist/ of the packages (turbo.json makes this package's test task
 * depend on `^build`). Kill times come from a seeded generator, so a run is reproducible up to the
 * operating system's scheduling.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BaseModel, seededRandom, setBackend, tf } from '@mie/core';
import { FeedForwardNN } from '@mie/layers';
import { hasTrainingCheckpoint } from '@mie/training';
import { testBackend } from './helpers';

const FIXTURES = path.resolve(__dirname, '../fixtures');
const KILLS = 50;
const PARALLEL = 2;

/** The kill delays: a seeded generator, so that failures reproduce. */
const seeded = seededRandom;

interface Child {
  process: ChildProcess;
  lines: string[];
  /** Resolves at the first stdout line matching `pattern`. */
  waitFor: (pattern: RegExp) => Promise<string>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
}

function start(script: string, args: string[]): Child {
  const child = spawn(process.execPath, [path.join(FIXTURES, script), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const waiters: Array<[RegExp, (line: string) => void]> = [];
  let buffered = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (chunk: string) => {
    buffered += chunk;
    let newline;
    while ((newline = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
      lines.push(line);
      for (const waiter of [...waiters]) {
        if (waiter[0].test(line)) {
          waiters.splice(waiters.indexOf(waiter), 1);
          waiter[1](line);
        }
      }
    }
  });
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal, stderr })),
  );
  const waitFor = (pattern: RegExp) =>
    new Promise<string>((resolve, reject) => {
      const found = lines.find((line) => pattern.test(line));
      if (found) return resolve(found);
      waiters.push([pattern, resolve]);
      void exited.then(({ code, stderr: err }) => reject(new Error(`child exited (${code}) before printing ${pattern}: ${err}`)));
    });
  return { process: child, lines, waitFor, exited };
}

let root: string;
beforeAll(async () => {
  await setBackend(testBackend());
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'mie-crash-'));
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

describe('SIGKILL during save', () => {
  it(`leaves a checkpoint that loads with the old or the new weights (${KILLS} kills)`, async () => {
    const random = seeded(2024);
    const delays = Array.from({ length: KILLS }, () => Math.floor(random() * 60));
    const outcomes: number[] = [];
    const trial = async (index: number): Promise<void> => {
      const dir = path.join(root, `save-${index}`);
      // Generation 0, written by this process, is the "old" checkpoint of the first save.
      const initial = new FeedForwardNN({ inputSize: 128, hiddenSizes: [128, 128], outputSize: 128 });
      for (const variable of initial.parameters()) variable.assign(tf.zeros(variable.shape));
      await initial.save(dir);
      initial.dispose();
      const child = start('save-loop.js', [dir, '128']);
      await child.waitFor(/^ready$/);
      await new Promise((resolve) => setTimeout(resolve, delays[index]));
      child.process.kill('SIGKILL');
      const { signal } = await child.exited;
      expect(signal).toBe('SIGKILL');
      const confirmed = Math.max(0, ...child.lines.filter((l) => l.startsWith('saved ')).map((l) => Number(l.slice(6))));
      const model = await BaseModel.load(dir);
      // Every parameter holds the same generation: one whole checkpoint, never a mix.
      const values = new Set(model.parameters().flatMap((v) => [...new Set(v.dataSync())]));
      model.dispose();
      expect(values.size).toBe(1);
      const generation = [...values][0];
      // At least the last save the child reported, at most the one it was writing.
      expect(generation).toBeGreaterThanOrEqual(confirmed);
      expect(generation).toBeLessThanOrEqual(confirmed + 2);
      outcomes.push(generation - confirmed);
    };
    for (let i = 0; i < KILLS; i += PARALLEL) {
      await Promise.all(Array.from({ length: Math.min(PARALLEL, KILLS - i) }, (_, j) => trial(i + j)));
    }
    expect(outcomes).toHaveLength(KILLS);
  }, 120_000);
});

describe('SIGKILL during training', () => {
  const STEPS = 60;
  const lossesOf = (lines: string[]) => lines.filter((l) => l.startsWith('step ')).map((l) => l.split(' ')[2]);
  const doneOf = (lines: string[]) => JSON.parse(lines.find((l) => l.startsWith('done '))!.slice(5)) as { losses: number[]; weights: string };

  it('resumes to the loss curve and weights of an uninterrupted run with the same seed', async () => {
    const reference = start('train-run.js', [path.join(root, 'unused'), 'none', String(STEPS)]);
    const { code } = await reference.exited;
    expect(code).toBe(0);
    const expected = doneOf(reference.lines);
    const expectedBits = lossesOf(reference.lines);
    expect(expected.losses).toHaveLength(STEPS);

    const random = seeded(99);
    for (let trial = 0; trial < 3; trial++) {
      const dir = path.join(root, `train-${trial}`);
      const killAt = 5 + Math.floor(random() * (STEPS - 15));
      const first = start('train-run.js', [dir, 'fresh', String(STEPS)]);
      await first.waitFor(new RegExp(`^step ${killAt} `));
      first.process.kill('SIGKILL');
      expect((await first.exited).signal).toBe('SIGKILL');
      // What the killed run did before dying matches the reference, step by step.
      const before = lossesOf(first.lines);
      expect(before.length).toBeGreaterThanOrEqual(killAt);
      expect(before).toEqual(expectedBits.slice(0, before.length));
      expect(before.length).toBeLessThan(STEPS);
      expect(await hasTrainingCheckpoint(path.join(dir, 'last'))).toBe(true);

      const resumed = start('train-run.js', [dir, 'resume', String(STEPS)]);
      const exit = await resumed.exited;
      expect([exit.code, exit.stderr]).toEqual([0, '']);
      const done = doneOf(resumed.lines);
      expect(done.losses).toEqual(expected.losses);
      expect(lossesOf(resumed.lines)).toEqual(expectedBits.slice(STEPS - lossesOf(resumed.lines).length));
      expect(done.weights).toBe(expected.weights);
    }
  }, 60_000);
});

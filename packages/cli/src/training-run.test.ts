import { plannedSteps } from './training-run';

/**
 * The planner on a fake clock: each "step" advances it by the next of `stepMs`, the evaluation by
 * `evalMs`, so the plan is exact arithmetic (and the test takes no real time).
 */
async function plan(stepMs: number[], evalMs: number, options: { minutes: number; evaluations: number; timedSteps: number; overhead: number; warmupSeconds?: number }) {
  let calls = 0;
  const steps = async () => {
    jest.advanceTimersByTime(stepMs[Math.min(calls++, stepMs.length - 1)]);
  };
  const planned = await plannedSteps({ ...options, step: steps, evaluate: async () => jest.advanceTimersByTime(evalMs) });
  return { planned, calls };
}

describe('plannedSteps', () => {
  beforeEach(() => jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] }));
  afterEach(() => jest.useRealTimers());

  it('plans from the median timed step after one untimed step, leaving the evaluations out', async () => {
    // Untimed 900 ms; timed 200, 100, 150 (median 150) -> 165 ms with 10% overhead.
    const { planned, calls } = await plan([900, 200, 100, 150], 2000, { minutes: 1, evaluations: 5, timedSteps: 3, overhead: 1.1 });
    expect(calls).toBe(4);
    // 60 s less the run's five evaluations (the planning comes before the budget).
    expect(planned).toBe(Math.floor((1 * 60 - 5 * 2) / ((150 / 1000) * 1.1)));
  });

  it('takes the mean of the middle two for an even count, so one slow step does not shorten the plan', async () => {
    const { planned } = await plan([100, 100, 120, 5000, 80], 0, { minutes: 10, evaluations: 10, timedSteps: 4, overhead: 1 });
    // Timed: 100, 120, 5000, 80 -> middle two 100 and 120 -> 110 ms.
    expect(planned).toBe(Math.floor((10 * 60 - 10 * 0) / ((110 / 1000) * 1)));
  });

  it('keeps stepping untimed for warmupSeconds before timing', async () => {
    // 300 ms steps while warming up (3 s: ten of them), then 100 ms steps.
    const stepMs = [...Array(10).fill(300), 100];
    const { planned, calls } = await plan(stepMs, 0, { minutes: 2, evaluations: 0, timedSteps: 5, overhead: 1, warmupSeconds: 3 });
    expect(calls).toBe(15);
    expect(planned).toBe(Math.floor((2 * 60 - 0 * 0) / ((100 / 1000) * 1)));
  });

  it('never plans fewer than 50 steps', async () => {
    const { planned } = await plan([1000], 5000, { minutes: 0.1, evaluations: 10, timedSteps: 2, overhead: 1.2 });
    expect(planned).toBe(50);
  });
});

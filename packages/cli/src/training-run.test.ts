import { cosineSchedule } from '@mie/training';
import { BudgetSchedule, plannedSteps } from './training-run';

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

describe('BudgetSchedule', () => {
  beforeEach(() => jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] }));
  afterEach(() => jest.useRealTimers());
  const scheduleFor = (totalSteps: number) => cosineSchedule({ peakLr: 1e-3, warmupSteps: 10, totalSteps, minLr: 1e-4 });

  it('re-plans from the latest interval\'s time per step and the time left, and schedules over the new total', () => {
    const budget = new BudgetSchedule({ minutes: 1, plannedSteps: 100, scheduleFor, minSteps: 11 });
    expect(budget.totalSteps).toBe(100);
    expect(budget.schedule(50)).toBe(scheduleFor(100)(50));
    budget.start();
    jest.advanceTimersByTime(3000); // 20 steps in 3 s: 150 ms a step, 57 s left -> 380 more
    expect(budget.replan(20)).toEqual({ totalSteps: 400, stepMs: 150 });
    expect(budget.totalSteps).toBe(400);
    expect(budget.schedule(50)).toBe(scheduleFor(400)(50));
    expect(budget.schedule(50)).not.toBe(scheduleFor(100)(50));
    // Faster now: only the last interval counts (20 steps in 1 s: 50 ms), 56 s left -> 1120 more.
    jest.advanceTimersByTime(1000);
    expect(budget.replan(40)).toEqual({ totalSteps: 1160, stepMs: 50 });
    // Slower: 10 steps in 5 s (500 ms), 51 s left -> 102 more.
    jest.advanceTimersByTime(5000);
    expect(budget.replan(50)).toEqual({ totalSteps: 152, stepMs: 500 });
  });

  it('ends the schedule where the run is once the budget is spent, never below minSteps', () => {
    const budget = new BudgetSchedule({ minutes: 0.1, plannedSteps: 5, scheduleFor, minSteps: 11 });
    expect(budget.totalSteps).toBe(11);
    budget.start();
    jest.advanceTimersByTime(8000); // past the 6 s budget
    expect(budget.replan(30)?.totalSteps).toBe(30);
    jest.advanceTimersByTime(100);
    expect(budget.replan(31)?.totalSteps).toBe(31);
    const early = new BudgetSchedule({ minutes: 0.1, plannedSteps: 50, scheduleFor, minSteps: 11 });
    early.start();
    jest.advanceTimersByTime(7000);
    expect(early.replan(2)?.totalSteps).toBe(11);
  });

  it('does not re-plan without steps since the last plan, nor before start()', () => {
    const budget = new BudgetSchedule({ minutes: 1, plannedSteps: 100, scheduleFor, minSteps: 11 });
    expect(() => budget.replan(10)).toThrow(/call start\(\) first/);
    budget.start();
    jest.advanceTimersByTime(1000);
    expect(budget.replan(0)).toBeNull();
    expect(budget.totalSteps).toBe(100);
  });
});

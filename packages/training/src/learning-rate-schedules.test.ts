import { MieConfigError } from '@mie/core';
import { constantSchedule, cosineSchedule, inverseSquareRootSchedule, linearSchedule, scaledInverseSquareRootSchedule } from './learning-rate-schedules';
import { loadFixture } from './__tests__/fixtures';

// Produced by scripts/fixtures/training.py with torch.optim.lr_scheduler.LambdaLR.
const fixture = loadFixture().schedules;

function expectLrs(actual: number[], expected: number[]): void {
  expect(actual).toHaveLength(expected.length);
  actual.forEach((value, i) => expect(Math.abs(value - expected[i])).toBeLessThanOrEqual(1e-12 + 1e-9 * Math.abs(expected[i])));
}

const steps = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

describe('learning-rate schedules', () => {
  it('match LambdaLR step by step', () => {
    const { inverseSquareRoot: inv, scaledInverseSquareRoot: scaled, cosine, linear } = fixture;
    expectLrs(steps(inv.lrs.length).map(inverseSquareRootSchedule({ dModel: inv.dModel, warmupSteps: inv.warmupSteps })), inv.lrs);
    expectLrs(steps(scaled.lrs.length).map(scaledInverseSquareRootSchedule({ peakLr: scaled.peakLr, warmupSteps: scaled.warmupSteps })), scaled.lrs);
    const { lrs: cosineLrs, ...cosineOptions } = cosine;
    expectLrs(steps(cosineLrs.length).map(cosineSchedule(cosineOptions)), cosineLrs);
    const { lrs: linearLrs, ...linearOptions } = linear;
    expectLrs(steps(linearLrs.length).map(linearSchedule(linearOptions)), linearLrs);
  });

  it('give the exact values of their formulas', () => {
    const paper = inverseSquareRootSchedule({ dModel: 512, warmupSteps: 4000 });
    expect(paper(1)).toBe(512 ** -0.5 * 4000 ** -1.5);
    expect(paper(4000)).toBeCloseTo(512 ** -0.5 * 4000 ** -0.5, 15); // the peak, about 7e-4
    expect(paper(16000)).toBeCloseTo(512 ** -0.5 / Math.sqrt(16000), 15);
    const scaled = scaledInverseSquareRootSchedule({ peakLr: 1e-3, warmupSteps: 100 });
    expect(scaled(50)).toBeCloseTo(5e-4, 15);
    expect(scaled(100)).toBeCloseTo(1e-3, 15);
    expect(scaled(400)).toBeCloseTo(5e-4, 15);
    const cosine = cosineSchedule({ peakLr: 1, warmupSteps: 10, totalSteps: 110, minLr: 0.1 });
    expect(cosine(5)).toBe(0.5);
    expect(cosine(10)).toBe(1);
    expect(cosine(60)).toBeCloseTo(0.55, 15);
    expect(cosine(110)).toBeCloseTo(0.1, 15);
    expect(cosine(500)).toBeCloseTo(0.1, 15);
    const linear = linearSchedule({ peakLr: 2, warmupSteps: 0, totalSteps: 4 });
    expect([1, 2, 3, 4, 5].map(linear)).toEqual([1.5, 1, 0.5, 0, 0]);
    expect(constantSchedule(3e-4)(7)).toBe(3e-4);
  });

  it('reject bad options and steps', () => {
    expect(() => inverseSquareRootSchedule({ dModel: 0 })).toThrow(MieConfigError);
    expect(() => cosineSchedule({ peakLr: 1, warmupSteps: 10, totalSteps: 10 })).toThrow(/totalSteps/);
    expect(() => linearSchedule({ peakLr: 1, totalSteps: 10, warmup: 2 } as never)).toThrow(/unknown option "warmup"/);
    expect(() => inverseSquareRootSchedule({ dModel: 8 })(0)).toThrow(/step must be an integer >= 1/);
  });
});

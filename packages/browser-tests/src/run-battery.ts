/**
 * Runs the backend-agreement check over {@link MODULE_CASES}: cpu is the reference, each other
 * backend must give the same outputs and gradients. Browser-safe; used by the Chromium page and
 * by the Node runner.
 */
import { setSeed, type BackendChoice } from '@mie/core';
import { backendAgreement, type AgreementResult } from '@mie/test-utils/backend-agreement';
import { MODULE_CASES } from './module-cases';

export interface CaseOutcome {
  name: string;
  /** Empty when the case failed before any comparison. */
  results: AgreementResult[];
  /** The failure, or null. */
  error: string | null;
}

/** Tolerances of the GPU backends against cpu (float32 with other summation orders and transcendental approximations). */
export const GPU_TOLERANCE = 1e-4;

export async function runBattery(backends: BackendChoice[], tolerance = GPU_TOLERANCE, only?: string): Promise<CaseOutcome[]> {
  const outcomes: CaseOutcome[] = [];
  for (const testCase of MODULE_CASES) {
    if (only && !testCase.name.includes(only)) continue;
    setSeed(11); // the same initial weights for every case, whatever ran before
    try {
      const results = await backendAgreement(testCase.factory, testCase.input, { backends: ['cpu', ...backends], tolerance, training: testCase.training });
      outcomes.push({ name: testCase.name, results, error: null });
    } catch (error) {
      outcomes.push({ name: testCase.name, results: [], error: (error as Error)?.stack ?? String(error) });
    }
  }
  return outcomes;
}

/** The loss curve a training command writes (`loss-curve.png`): training loss and the selection metric against steps. */
import { renderLineChart } from '@mie/plot';
import type { FitResult } from '@mie/training';

/** Options of {@link renderLossCurve}. */
export interface LossCurveOptions {
  title: string;
  /** The y axis (`loss (nats) / WER`). */
  yLabel: string;
  /** Name of the evaluation series (`dev WER`). */
  metricName: string;
  /** Name of the loss series. Default `training loss`. */
  lossName?: string;
  /** Multiplies every loss (1 / ln 2 plots nats as bits). Default 1. */
  lossScale?: number;
  /** Steps averaged into one point of the loss. Default 50. */
  window?: number;
}

/** The PNG of the training loss (averaged per `window` steps) and the evaluations against steps; null without steps. */
export async function renderLossCurve(result: Pick<FitResult, 'history' | 'evaluations'>, options: LossCurveOptions): Promise<Uint8Array | null> {
  const { title, yLabel, metricName, lossName = 'training loss', lossScale = 1, window = 50 } = options;
  const loss: Array<[number, number]> = [];
  for (let i = 0; i < result.history.length; i += window) {
    const slice = result.history.slice(i, i + window);
    loss.push([slice[slice.length - 1].step, (lossScale * slice.reduce((a, r) => a + r.loss, 0)) / slice.length]);
  }
  const series = [{ name: lossName, points: loss }];
  if (result.evaluations.length) series.push({ name: metricName, points: result.evaluations.map((e) => [e.step, e.metric] as [number, number]) });
  return loss.length ? renderLineChart({ series, title, xLabel: 'step', yLabel }) : null;
}

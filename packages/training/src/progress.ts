/**
 * Progress output of the Trainer: a cli-progress bar (loss, tokens/s, ETA) on an interactive
 * terminal (progress-bar.ts, Node only), plain log lines otherwise (CI logs, files, tests, pages).
 */
import { createBarReporter, terminalIsInteractive } from './progress-bar';

/** How the Trainer reports progress: `'auto'` is a bar when stdout is a TTY and no `log` was given, else lines. */
export type ProgressMode = 'auto' | 'bar' | 'lines' | 'none';

/** One progress report. */
export interface ProgressUpdate {
  /** Optimizer steps done. */
  step: number;
  /** The target step count, when the run is bounded by steps. */
  totalSteps?: number;
  /** Current epoch (0-based). */
  epoch: number;
  /** Loss of the latest step. */
  loss: number;
  /** Learning rate of the latest step. */
  lr: number;
  /** Tokens (or, without `countTokens`, batches) per second since the previous report. */
  throughput: number;
  /** What `throughput` counts. */
  throughputUnit: 'tokens/s' | 'batches/s';
  /** Seconds left, when known. */
  etaSeconds?: number;
}

/** Receives the Trainer's progress reports and messages. */
export interface ProgressReporter {
  /** Shows a progress update (a bar redraw or a log line). */
  update(update: ProgressUpdate): void;
  /** Shows a one-off message (an evaluation, the end of training). */
  message(line: string): void;
  /** Ends the output (stops the bar). */
  stop(): void;
}

/** `1:02:03` / `2:03`. */
export function formatDuration(seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds)) return '?';
  const s = Math.max(0, Math.round(seconds));
  const hours = Math.floor(s / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, '0');
  return hours > 0 ? `${hours}:${String(minutes).padStart(2, '0')}:${rest}` : `${minutes}:${rest}`;
}

/** The plain log line of one update: `step 20/100 | epoch 1 | loss 1.2346 | lr 1.00e-3 | 5120 tokens/s | ETA 1:05`. */
export function formatProgressLine(u: ProgressUpdate): string {
  const step = u.totalSteps === undefined ? `step ${u.step}` : `step ${u.step}/${u.totalSteps}`;
  return `${step} | epoch ${u.epoch} | loss ${u.loss.toFixed(4)} | lr ${u.lr.toExponential(2)} | ${u.throughput.toFixed(u.throughput >= 100 ? 0 : 2)} ${u.throughputUnit} | ETA ${formatDuration(u.etaSeconds)}`;
}

/** Plain log lines, one per update. */
export class LineReporter implements ProgressReporter {
  constructor(private readonly log: (line: string) => void) {}
  update(u: ProgressUpdate): void {
    this.log(formatProgressLine(u));
  }
  message(line: string): void {
    this.log(line);
  }
  stop(): void {}
}

class SilentReporter implements ProgressReporter {
  update(): void {}
  message(): void {}
  stop(): void {}
}

/** The reporter for `mode`; `log` receives lines (default `console.log`). */
export function createProgressReporter(mode: ProgressMode, log?: (line: string) => void): ProgressReporter {
  const resolved = mode === 'auto' ? (log === undefined && terminalIsInteractive() ? 'bar' : 'lines') : mode;
  if (resolved === 'none') return new SilentReporter();
  if (resolved === 'bar') return createBarReporter();
  return new LineReporter(log ?? ((line) => console.log(line)));
}

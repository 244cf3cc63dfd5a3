/**
 * The Trainer's progress bar on an interactive terminal (Node only: cli-progress draws on
 * stdout). Browser bundles get progress-bar-browser.ts instead (package.json "browser").
 */
import { MultiBar, Presets, type SingleBar } from 'cli-progress';
import type { ProgressReporter, ProgressUpdate } from './progress';
import { formatDuration } from './progress';

/** Whether stdout is an interactive terminal (where `progress: 'auto'` draws a bar). */
export function terminalIsInteractive(): boolean {
  return process.stdout.isTTY === true;
}

class BarReporter implements ProgressReporter {
  readonly #multi = new MultiBar(
    {
      format: 'step {value}/{total} [{bar}] epoch {epoch} | loss {loss} | lr {lr} | {throughput} | ETA {etaText}',
      stream: process.stdout,
      hideCursor: true,
      clearOnComplete: false,
    },
    Presets.shades_classic,
  );
  #bar: SingleBar | null = null;

  update(u: ProgressUpdate): void {
    const payload = {
      epoch: u.epoch,
      loss: u.loss.toFixed(4),
      lr: u.lr.toExponential(2),
      throughput: `${u.throughput.toFixed(u.throughput >= 100 ? 0 : 2)} ${u.throughputUnit}`,
      etaText: formatDuration(u.etaSeconds),
    };
    const total = u.totalSteps ?? u.step;
    if (this.#bar === null) this.#bar = this.#multi.create(total, u.step, payload);
    else {
      this.#bar.setTotal(total);
      this.#bar.update(u.step, payload);
    }
  }
  message(line: string): void {
    this.#multi.log(`${line}\n`);
  }
  stop(): void {
    this.#multi.stop();
  }
}

/** A bar drawn on stdout. */
export function createBarReporter(): ProgressReporter {
  return new BarReporter();
}

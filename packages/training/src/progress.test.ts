import { createProgressReporter, formatDuration, formatProgressLine } from './progress';

describe('progress output', () => {
  it('formats durations and lines', () => {
    expect([formatDuration(5), formatDuration(65), formatDuration(3725), formatDuration(undefined)]).toEqual(['0:05', '1:05', '1:02:05', '?']);
    const line = formatProgressLine({ step: 20, totalSteps: 100, epoch: 1, loss: 1.23456, lr: 1e-3, throughput: 5120.4, throughputUnit: 'tokens/s', etaSeconds: 65 });
    expect(line).toBe('step 20/100 | epoch 1 | loss 1.2346 | lr 1.00e-3 | 5120 tokens/s | ETA 1:05');
    expect(formatProgressLine({ step: 3, epoch: 0, loss: 2, lr: 0.5, throughput: 1.5, throughputUnit: 'batches/s' })).toBe(
      'step 3 | epoch 0 | loss 2.0000 | lr 5.00e-1 | 1.50 batches/s | ETA ?',
    );
  });

  it('sends lines to the logger, or nowhere, and drives a bar without error', () => {
    const lines: string[] = [];
    const reporter = createProgressReporter('auto', (line) => lines.push(line));
    reporter.update({ step: 1, epoch: 0, loss: 1, lr: 1, throughput: 1, throughputUnit: 'batches/s' });
    reporter.message('hello');
    reporter.stop();
    expect(lines).toEqual(['step 1 | epoch 0 | loss 1.0000 | lr 1.00e+0 | 1.00 batches/s | ETA ?', 'hello']);
    const silent = createProgressReporter('none', (line) => lines.push(line));
    silent.update({ step: 2, epoch: 0, loss: 1, lr: 1, throughput: 1, throughputUnit: 'batches/s' });
    expect(lines).toHaveLength(2);
    const written: string[] = [];
    const write = jest.spyOn(process.stdout, 'write').mockImplementation((chunk) => written.push(String(chunk)) > 0);
    const bar = createProgressReporter('bar');
    bar.update({ step: 1, totalSteps: 10, epoch: 0, loss: 1, lr: 1, throughput: 1, throughputUnit: 'tokens/s', etaSeconds: 9 });
    bar.update({ step: 2, totalSteps: 10, epoch: 0, loss: 1, lr: 1, throughput: 1, throughputUnit: 'tokens/s', etaSeconds: 8 });
    bar.message('eval');
    bar.stop();
    write.mockRestore();
    // Off a TTY cli-progress draws only the final state, on stop.
    expect(written.join('')).toMatch(/step 2\/10 .* loss 1\.0000 .* 1\.00 tokens\/s \| ETA 0:08/);
  });
});

/**
 * Checks of positions shared by the modules of this package: the call option `offset`, the range
 * of positions a call needs, and counts of rows or columns to show. Each throws the typed error of
 * @mie/core with a message naming the module, the argument, what was expected and what was received.
 */
import { MieConfigError, MieShapeError, errorMessage } from '@mie/core';

/** The call option `offset`: the position of the first row, a non-negative integer. */
export function checkOffset(module: string, offset: unknown): number {
  if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0) {
    throw new MieConfigError(errorMessage(module, 'option "offset"', 'must be a non-negative integer (the position of the first row)', offset));
  }
  return offset;
}

/** Positions `offset .. offset + length - 1` must all be below `maxSeqLength`. */
export function checkPositions(module: string, argument: string, length: number, offset: number, maxSeqLength: number): void {
  if (offset + length > maxSeqLength) {
    const what = offset === 0 ? `sequence length ${length}` : `positions ${offset}..${offset + length - 1} (offset ${offset} + sequence length ${length})`;
    throw new MieShapeError(
      `${module}: ${argument} needs ${what}, but maxSeqLength is ${maxSeqLength}, so positions must stay below ${maxSeqLength}. ` +
        `Construct the module with a larger maxSeqLength.`,
    );
  }
}

/** A count of positions or dimensions to use: an integer in [1, max]. */
export function checkCount(module: string, name: string, value: unknown, max: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1 || value > max) {
    throw new MieConfigError(errorMessage(module, `option "${name}"`, `must be an integer in [1, ${max}]`, value));
  }
  return value;
}

import { MieError } from '@mie/core';

/**
 * A training run that cannot go on: a loss that became NaN or infinite (the message names the
 * step, the epoch and the batch), or a resume checkpoint that is missing or does not fit.
 */
export class MieTrainingError extends MieError {}

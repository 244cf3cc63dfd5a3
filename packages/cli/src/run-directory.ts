/**
 * The rules for a command's output directory (`mie train g2p --out DIR`, `mie train iris --out
 * DIR`): a directory that already holds a run is refused unless the user says what to do with it
 * (`--resume` continues it, `--force` removes the run's files and starts over); a `--resume`
 * without a run is an error naming what is missing; the user's other files in DIR are never touched.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { MieConfigError, MieSerializationError, causeMessage, writeFilesAtomically } from '@mie/core';

/** What a kind of run writes into its directory. */
export interface RunLayout {
  /** The command, for messages (`mie train g2p`). */
  command: string;
  /** Files and folders a run writes, by name. */
  entries: readonly string[];
  /** Names a run writes that follow a pattern (`attention-WORD.png`). */
  patterns: readonly RegExp[];
  /** Paths (relative to the directory) that `--resume` needs. */
  resumeNeeds: readonly string[];
}

/** Temporary, backup and lock files of `writeFilesAtomically` (`.mie-tmp-*`, `.mie-prev-*`, `.mie-lock`). */
const ATOMIC_WRITE_FILES = /^\.mie-/;

/** `mie train g2p`: see train-g2p.ts for what each is. */
export const G2P_RUN: RunLayout = {
  command: 'mie train g2p',
  entries: ['train', 'model', 'metrics.json', 'loss-curve.png'],
  patterns: [/^attention-[a-z_]+\.png$/, ATOMIC_WRITE_FILES],
  resumeNeeds: [path.join('train', 'g2p-config.json'), path.join('train', 'last', 'checkpoint.safetensors')],
};

/** `mie train lm`: see train-lm.ts for what each is. */
export const LM_RUN: RunLayout = {
  command: 'mie train lm',
  entries: ['train', 'model', 'metrics.json', 'loss-curve.png'],
  patterns: [ATOMIC_WRITE_FILES],
  resumeNeeds: [path.join('train', 'lm-config.json'), path.join('train', 'last', 'checkpoint.safetensors')],
};

/** `mie train digits`: see train-digits.ts for what each is. */
export const DIGITS_RUN: RunLayout = {
  command: 'mie train digits',
  entries: ['train', 'model', 'metrics.json', 'loss-curve.png'],
  patterns: [/^attention-\d+\.png$/, ATOMIC_WRITE_FILES],
  resumeNeeds: [path.join('train', 'digits-config.json'), path.join('train', 'last', 'checkpoint.safetensors')],
};

/** `mie train iris`: the model itself in DIR (so `--model DIR` works), the trainer's state in DIR/train. */
export const IRIS_RUN: RunLayout = {
  command: 'mie train iris',
  entries: ['train', 'config.json', 'model.safetensors', 'model.safetensors.index.json'],
  // Hugging Face shards, which BaseModel.save writes for weights above 5 GB.
  patterns: [/^model-\d{5}-of-\d{5}\.safetensors$/, ATOMIC_WRITE_FILES],
  resumeNeeds: [path.join('train', 'last', 'checkpoint.safetensors')],
};

/** Options of {@link prepareRunDirectory}. */
export interface PrepareRunOptions {
  /** Continue the run in the directory (it must hold one). */
  resume?: boolean;
  /** Remove the run in the directory (only the files a run writes) and start over. */
  force?: boolean;
}

function errorCode(error: unknown): string | undefined {
  const code: unknown = typeof error === 'object' && error !== null ? Object.getOwnPropertyDescriptor(error, 'code')?.value : undefined;
  return typeof code === 'string' ? code : undefined;
}

/** The names in `dir` that a run of `layout` writes (empty when `dir` is absent or holds none). */
export async function runEntries(dir: string, layout: RunLayout): Promise<string[]> {
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return [];
    throw new MieConfigError(`${layout.command}: cannot use --out ${dir}: ${causeMessage(error)}`, { cause: error });
  }
  return names.filter((name) => layout.entries.includes(name) || layout.patterns.some((pattern) => pattern.test(name))).sort();
}

/**
 * Makes `dir` ready for a run of `layout`, before any training: creates it, refuses an existing
 * run without `resume` or `force` (a `MieConfigError` saying which to pass), removes the old run's
 * files with `force`, and checks with `resume` that everything a resume needs is there (naming
 * what is missing). A directory that cannot be created or read (`--out /dev/null/x`) is a
 * `MieConfigError` naming it.
 */
export async function prepareRunDirectory(dir: string, layout: RunLayout, { resume = false, force = false }: PrepareRunOptions = {}): Promise<void> {
  const { command } = layout;
  if (resume && force) throw new MieConfigError(`${command}: --resume and --force cannot be combined (--resume continues the run in ${dir}, --force deletes it).`);
  let stats: import('node:fs').Stats | undefined;
  try {
    stats = await fs.stat(dir);
  } catch (error) {
    if (errorCode(error) !== 'ENOENT') throw new MieConfigError(`${command}: cannot use --out ${dir}: ${causeMessage(error)}`, { cause: error });
  }
  if (stats !== undefined && !stats.isDirectory()) throw new MieConfigError(`${command}: --out ${dir} is not a directory.`);
  const existing = await runEntries(dir, layout);
  if (resume) {
    for (const needed of layout.resumeNeeds) {
      const file = path.join(dir, needed);
      try {
        await fs.stat(file);
      } catch (error) {
        throw new MieConfigError(`${command}: cannot resume: ${file} is missing or unreadable (${causeMessage(error)}); ${dir} holds no run to continue.`, { cause: error });
      }
    }
    return;
  }
  if (existing.length > 0 && !force) {
    throw new MieConfigError(`${command}: ${dir} already holds a run (${existing.join(', ')}); pass --resume to continue it or --force to start over.`);
  }
  for (const name of existing) {
    const entry = path.join(dir, name);
    try {
      // A symbolic link is removed itself, never what it points to.
      await fs.rm(entry, { recursive: true, force: true });
    } catch (error) {
      throw new MieSerializationError(`${command}: --force could not remove ${entry}: ${causeMessage(error)}`, { cause: error });
    }
  }
  try {
    await fs.mkdir(dir, { recursive: true });
  } catch (error) {
    throw new MieConfigError(`${command}: cannot create the --out directory ${dir}: ${causeMessage(error)}`, { cause: error });
  }
}

/**
 * Writes a run's `files` (name and bytes) into `dir` atomically, each replaced whole or not at
 * all; a failure is a `MieSerializationError` naming the command, the files and the directory.
 */
export async function writeRunFiles(command: string, dir: string, files: Array<[string, Uint8Array]>): Promise<void> {
  try {
    await writeFilesAtomically(dir, files);
  } catch (error) {
    throw new MieSerializationError(`${command}: could not write ${files.map(([name]) => name).join(', ')} to ${dir}: ${causeMessage(error)}`, { cause: error });
  }
}

import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', '**/*.js', '**/*.mjs'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      // tfjs is reached only through @mie/core, which owns the one tfjs instance.
      'no-restricted-imports': ['error', {
        patterns: [{ group: ['@tensorflow/*/dist/*'], message: 'Import tfjs through @mie/core (or the package root), never from dist.' }],
      }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    files: ['packages/!(core)/**/*.ts', 'examples/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [{ group: ['@tensorflow/*'], message: 'Import tfjs only through @mie/core (`import { tf } from "@mie/core"`).' }],
      }],
    },
  },
);

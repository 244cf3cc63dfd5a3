import { defineConfig } from 'vite';

// A static site: `vite build` writes dist/ (index.html, the bundle, and public/ as is).
export default defineConfig({
  base: './',
  build: { outDir: 'dist', target: 'es2022', chunkSizeWarningLimit: 4096 },
});

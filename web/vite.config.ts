/**
 * Builds the web UI into web/dist, which the control plane serves at /. Asset URLs are relative so
 * the bundle works wherever it is mounted. `vite web` runs a dev server that proxies the API to a
 * control plane on BERTH_DEV_API (default http://127.0.0.1:3000).
 */
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

const api = process.env.BERTH_DEV_API ?? 'http://127.0.0.1:3000';

export default defineConfig({
  root: import.meta.dirname,
  base: './',
  plugins: [react()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // One bundle is fine for a UI of this size; xterm alone is ~300 kB.
    chunkSizeWarningLimit: 1024,
  },
  server: {
    proxy: {
      '/api': { target: api, ws: true, changeOrigin: true },
      '/health': { target: api, changeOrigin: true },
    },
  },
});

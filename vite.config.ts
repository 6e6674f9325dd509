// Vite config of the browser app (web/): `vite` serves it, `vite build` writes a self-contained dist-web/.
import { createReadStream } from 'node:fs';
import { copyFile, mkdir, stat } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig, type Connect, type Plugin } from 'vite';

const ROOT = fileURLToPath(new URL('.', import.meta.url));
const ORT_DIST = join(ROOT, 'node_modules/onnxruntime-web/dist');
/** The JSEP build of ONNX Runtime Web: the wasm backend (SIMD, threads) and WebGPU in one module. */
export const ORT_FILES = ['ort-wasm-simd-threaded.jsep.mjs', 'ort-wasm-simd-threaded.jsep.wasm'] as const;

/** Cross-origin isolation: enables SharedArrayBuffer, hence wasm threads. */
export const ISOLATION_HEADERS = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
};

/** The MobileUtr weights the app loads by default: trained on BUSI (pretrained/README.md). */
export const DEFAULT_MODEL_FILES = ['mobileutr-busi.onnx'] as const;
const PRETRAINED = join(ROOT, 'pretrained');

const CONTENT_TYPES: Record<string, string> = { wasm: 'application/wasm', mjs: 'text/javascript', onnx: 'application/octet-stream' };

/**
 * Makes `files` of `source` available at `<base><urlDir>/`: served from `source` by the dev server, copied into the
 * build output by `vite build`. The ORT runtime files (the app points `ort.env.wasm.wasmPaths` at ort/) and the
 * bundled model (models/) come this way, without copies in the repository.
 */
function servedFiles(urlDir: string, source: string, files: readonly string[]): Plugin {
  let outDir = '';
  const pattern = new RegExp(`/${urlDir}/([^/?#]+)(?:[?#].*)?$`);
  const serve: Connect.NextHandleFunction = (req, res: ServerResponse, next) => {
    const name = pattern.exec(req.url ?? '')?.[1];
    if (!name || !files.includes(name)) return next();
    const file = join(source, name);
    stat(file).then(
      (s) => {
        res.writeHead(200, {
          ...ISOLATION_HEADERS,
          'Content-Type': CONTENT_TYPES[name.slice(name.lastIndexOf('.') + 1)] ?? 'application/octet-stream',
          'Content-Length': String(s.size),
          'Cache-Control': 'no-cache',
        });
        createReadStream(file).pipe(res);
      },
      () => next(),
    );
  };
  return {
    name: `mobileutr-served-${urlDir}`,
    configureServer(server) {
      server.middlewares.use(serve);
    },
    configurePreviewServer(server) {
      server.middlewares.use(serve);
    },
    configResolved(config) {
      outDir = config.build.outDir;
    },
    async writeBundle(options) {
      const dir = join(options.dir ?? outDir, urlDir);
      await mkdir(dir, { recursive: true });
      await Promise.all(files.map((f) => copyFile(join(source, f), join(dir, f))));
    },
  };
}

export default defineConfig({
  root: join(ROOT, 'web'),
  // relative asset URLs: dist-web/ works from any path of a static host
  base: './',
  // no SPA fallback: a missing model file must be a 404, not index.html
  appType: 'mpa',
  resolve: {
    // the ORT build that loads its wasm glue (.mjs) and binary from wasmPaths instead of embedding the glue
    alias: [{ find: /^onnxruntime-web$/, replacement: join(ORT_DIST, 'ort.min.mjs') }],
  },
  optimizeDeps: { exclude: ['onnxruntime-web'] },
  server: {
    host: '127.0.0.1',
    headers: ISOLATION_HEADERS,
    fs: { allow: [ROOT] },
  },
  preview: {
    host: '127.0.0.1',
    headers: ISOLATION_HEADERS,
  },
  build: {
    outDir: join(ROOT, 'dist-web'),
    emptyOutDir: true,
    target: 'es2022',
    // ort.min.mjs alone is ~370 kB
    chunkSizeWarningLimit: 1024,
    rollupOptions: { input: { index: join(ROOT, 'web/index.html'), train: join(ROOT, 'web/train.html') } },
  },
  // the training worker imports onnxruntime-web too
  worker: { format: 'es' },
  plugins: [servedFiles('ort', ORT_DIST, ORT_FILES), servedFiles('models', PRETRAINED, DEFAULT_MODEL_FILES)],
});

// Compiles the admin console (packages/server/console: Preact + uPlot, TypeScript/TSX) into
// packages/server/console-dist, which the server serves at /console/ and its npm package ships.
// Plain JavaScript so that `npm run build` needs nothing but node and esbuild.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const source = join(root, 'packages/server/console');

/** Builds the console into `out` (default packages/server/console-dist); returns the asset names. */
export async function buildConsole(out = join(root, 'packages/server/console-dist')) {
  rmSync(out, { recursive: true, force: true });
  mkdirSync(join(out, 'assets'), { recursive: true });
  const result = await build({
    entryPoints: [join(source, 'main.tsx')],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: ['es2022', 'chrome111', 'firefox111', 'safari16.4'],
    jsx: 'automatic',
    jsxImportSource: 'preact',
    minify: true,
    legalComments: 'eof',
    entryNames: 'console-[hash]',
    outdir: join(out, 'assets'),
    metafile: true,
    logLevel: 'warning',
  });
  const files = Object.keys(result.metafile.outputs).map((f) => basename(f));
  const js = files.find((f) => f.endsWith('.js'));
  const css = files.find((f) => f.endsWith('.css'));
  if (!js || !css) throw new Error(`console build: expected a .js and a .css, got ${files.join(', ')}`);
  const html = readFileSync(join(source, 'index.html'), 'utf8').replace('{{js}}', js).replace('{{css}}', css);
  writeFileSync(join(out, 'index.html'), html);
  return { js, css };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { js, css } = await buildConsole();
  console.log(`console built: ${js}, ${css}`);
}

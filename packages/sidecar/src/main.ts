// The `latchkey-sidecar` command: latchkey-sidecar --config <file> (or LATCHKEY_SIDECAR_CONFIG).
import { SidecarError } from './errors.ts';
import { runSidecar } from './run.ts';

const argv = process.argv.slice(2);
if (argv.includes('--help') || argv.includes('-h')) {
  console.log('usage: latchkey-sidecar --config <file.yaml|file.json>   (or LATCHKEY_SIDECAR_CONFIG)');
} else {
  const i = argv.indexOf('--config');
  runSidecar(i >= 0 ? argv[i + 1] : undefined).catch((err: unknown) => {
    const code = err instanceof SidecarError ? err.code : 'start_failed';
    console.error(`latchkey-sidecar: ${code}: ${(err as Error).message}`);
    process.exit(2);
  });
}

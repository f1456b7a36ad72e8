// The `latchkey-sidecar` command: latchkey-sidecar --config <file> (or LATCHKEY_SIDECAR_CONFIG).
import { loadSidecarConfig } from './config/load_sidecar_config.ts';
import { SidecarError } from './errors.ts';
import { startSidecar } from './sidecar.ts';

const USAGE = 'usage: latchkey-sidecar --config <file.yaml|file.json>   (or LATCHKEY_SIDECAR_CONFIG)';

async function main(argv: string[]): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(USAGE);
    return;
  }
  const i = argv.indexOf('--config');
  const file = i >= 0 ? argv[i + 1] : process.env.LATCHKEY_SIDECAR_CONFIG;
  if (!file) throw new SidecarError('config_invalid', USAGE);
  const config = loadSidecarConfig(file);
  const sidecar = await startSidecar(config);
  // One line a supervisor (or a test) can wait for.
  console.log(
    JSON.stringify({ msg: 'latchkey-sidecar ready', proxy: sidecar.proxyUrl ?? null, api: sidecar.url ?? null }),
  );
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(JSON.stringify({ msg: `${signal}: draining` }));
    sidecar.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main(process.argv.slice(2)).catch((err: unknown) => {
  const code = err instanceof SidecarError ? err.code : 'start_failed';
  console.error(`latchkey-sidecar: ${code}: ${(err as Error).message}`);
  process.exit(2);
});

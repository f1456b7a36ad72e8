import { loadSidecarConfig } from './config/load_sidecar_config.ts';
import { SidecarError } from './errors.ts';
import { type RunningSidecar, startSidecar } from './sidecar.ts';

/**
 * What `latchkey-sidecar --config <file>` and `latchkey sidecar --config <file>` do: load the file
 * (or LATCHKEY_SIDECAR_CONFIG), start, print one JSON "ready" line, and on SIGTERM or SIGINT
 * drain and exit 0. Errors are thrown as SidecarError for the caller to print.
 */
export async function runSidecar(file: string | undefined): Promise<RunningSidecar> {
  const path = file ?? process.env.LATCHKEY_SIDECAR_CONFIG;
  if (!path)
    throw new SidecarError('config_invalid', 'give --config <file.yaml|file.json> (or LATCHKEY_SIDECAR_CONFIG)');
  const sidecar = await startSidecar(loadSidecarConfig(path));
  console.log(
    JSON.stringify({
      msg: 'latchkey-sidecar ready',
      proxy: sidecar.proxyUrl ?? null,
      api: sidecar.url ?? null,
      grpc: sidecar.grpcAddress ?? null,
    }),
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
  return sidecar;
}

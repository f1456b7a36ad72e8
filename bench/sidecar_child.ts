// The sidecar of the benchmark, from the build (as production runs it): argv[2] is its configuration file.
import { loadSidecarConfig, startSidecar } from '@latchkey/sidecar';

const sidecar = await startSidecar(loadSidecarConfig(process.argv[2] as string), { logger: false });
process.send?.({ kind: 'ready', proxy: sidecar.proxyUrl, api: sidecar.url, grpc: sidecar.grpcAddress });
process.on('message', (m: { kind: string }) => {
  if (m.kind === 'stop') void sidecar.close().then(() => process.exit(0));
});

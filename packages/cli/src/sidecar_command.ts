import type { Command } from 'commander';
import { startTelemetry } from './telemetry.ts';

/** `latchkey sidecar --config <file>`: the same as `latchkey-sidecar` (docs/sidecar.md). */
export function registerSidecarCommand(program: Command): void {
  program
    .command('sidecar')
    .description('run the sidecar in front of a service in any language (docs/sidecar.md)')
    .option('--config <file>', 'the sidecar configuration, YAML or JSON (LATCHKEY_SIDECAR_CONFIG)')
    .action(async (options: { config?: string }) => {
      // Loaded only for this command: the rest of the CLI does not pay for the proxy and gRPC.
      const { runSidecar, SidecarError } = await import('@latchkey/sidecar');
      // The SDK inside the sidecar traces verification and decisions when OTEL_* asks for it.
      await startTelemetry(process.env, 'latchkey-sidecar');
      try {
        await runSidecar(options.config);
      } catch (err) {
        // The same words and exit code as latchkey-sidecar.
        const code = err instanceof SidecarError ? err.code : 'start_failed';
        process.stderr.write(`latchkey sidecar: ${code}: ${(err as Error).message}\n`);
        process.exit(2);
      }
    });
}

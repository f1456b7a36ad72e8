import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

const ROOT = new URL('../../../', import.meta.url).pathname;
/** tsx and the CLI entry point, for tests that run `latchkey` as a separate process. */
export const TSX = join(ROOT, 'node_modules/.bin/tsx');
export const CLI_MAIN = join(ROOT, 'packages/cli/src/main.ts');

export interface ServedCli {
  child: ChildProcess;
  /** Everything the process printed so far (stdout and stderr). */
  out: () => string;
  exited: Promise<number | null>;
}

/**
 * Runs `latchkey serve` with the given environment and waits until it listens. The child is the
 * server's own node process (not a tsx wrapper), so a signal sent to it reaches the server.
 */
export async function serveCli(env: Record<string, string>): Promise<ServedCli> {
  const child = spawn(process.execPath, ['--import', 'tsx', CLI_MAIN, 'serve'], {
    env: { ...process.env, LATCHKEY_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const deadline = Date.now() + 30_000;
  while (!out.includes('listening on')) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`serve did not start:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { child, out: () => out, exited };
}

import { type Command, Option } from 'commander';
import type { ConfigInput } from '@latchkey/server';
import { envName, flagName, SETTINGS, type SettingKey, settingSchema } from '@latchkey/server/settings';
import { startTelemetry } from './telemetry.ts';

/** One flag per setting that has one (secrets have none), made from the configuration schema. */
function settingOptions(): Option[] {
  return (Object.keys(SETTINGS) as SettingKey[]).flatMap((key) => {
    const flag = flagName(key);
    if (!flag) return [];
    const s = settingSchema(key);
    const option = new Option(`${flag} <value>`, `${s.description} (${envName(key)})`);
    if (s.type === 'boolean') option.choices(['on', 'off']);
    else if (s.enum) option.choices(s.enum);
    return [option];
  });
}

/** `latchkey serve`: the IdP in this process (the IdP package is loaded only here). */
export function registerServeCommand(program: Command): void {
  const serve = program.command('serve').description('start the identity provider (what `npm start` runs)');
  for (const option of settingOptions()) serve.addOption(option);
  serve.action(async (opts: Record<string, string | undefined>) => {
    // The IdP is loaded only to serve: every other command answers without it.
    const { configFromEnv, insecureWarnings, loadConfig, startIdp } = await import('@latchkey/server');
    const { input, unknown } = configFromEnv(process.env);
    // Commander names each option after its flag in camelCase: the setting's key. Flags win.
    for (const [k, v] of Object.entries(opts)) if (v !== undefined) input[k as keyof ConfigInput] = v;
    let config;
    try {
      config = loadConfig(input, unknown);
    } catch (err) {
      process.stderr.write(`latchkey: ${(err as Error).message}\n`);
      process.exit(2);
    }
    for (const w of insecureWarnings(config)) process.stderr.write(`latchkey: warning: ${w}\n`);
    // Before the IdP: its tracer is a proxy that delegates to whatever provider is registered.
    const telemetry = await startTelemetry(process.env, 'latchkey-idp');
    const idp = await startIdp(config);
    if (idp.generatedAdminToken) {
      process.stdout.write(
        `\nLatchkey generated the bootstrap admin token. It is shown this once and stored only hashed:\n\n  LATCHKEY_ADMIN_TOKEN=${idp.generatedAdminToken}\n\n`,
      );
    }
    process.stdout.write(`Latchkey IdP listening on ${idp.url} (issuer ${idp.issuer}, ${idp.storage.kind} storage)\n`);
    if (idp.caPem) process.stdout.write(`Local CA certificate: ${config.dataDir}/ca.pem\n`);
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      process.stdout.write(
        `${signal}: draining for ${config.shutdownGrace}s (readyz says draining), then finishing in-flight requests and flushing audit\n`,
      );
      (signal === 'SIGTERM' ? idp.shutdown() : idp.close())
        .then(() => telemetry?.shutdown())
        .then(
          () => process.exit(0),
          (err: Error) => {
            process.stderr.write(`latchkey: shutdown failed: ${err.message}\n`);
            process.exit(1);
          },
        );
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });
}

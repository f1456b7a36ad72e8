#!/usr/bin/env node
// The `latchkey` command: one file per noun, registered here.
import { Command } from 'commander';
import { createRequire } from 'node:module';
import { registerFederationCommands } from './federation_commands.ts';
import { registerBackupCommands } from './backup_commands.ts';
import { registerAlertCommands } from './alert_commands.ts';
import { registerAuditCommands } from './audit_commands.ts';
import { registerCaCommands } from './ca_commands.ts';
import { registerConsoleCommands } from './console_commands.ts';
import { registerClientCommands } from './client_commands.ts';
import { registerKeyCommands } from './key_commands.ts';
import { registerPolicyCommands } from './policy_commands.ts';
import { registerSidecarCommand } from './sidecar_command.ts';
import { registerServeCommand } from './serve_command.ts';
import { registerHealthCommand } from './health_command.ts';
import { registerTokenCommand } from './token_command.ts';
import { registerUserCommands } from './user_commands.ts';

// The package's own version: package.json sits one level above both src/ and dist/.
const { version } = createRequire(import.meta.url)('../package.json') as { version: string };
const program = new Command('latchkey')
  .description('Latchkey: identity and access management for microservices')
  .version(version)
  .showHelpAfterError();

registerServeCommand(program);
registerHealthCommand(program);
registerClientCommands(program);
registerUserCommands(program);
registerKeyCommands(program);
registerAuditCommands(program);
registerAlertCommands(program);
registerFederationCommands(program);
registerBackupCommands(program);
registerTokenCommand(program);
registerPolicyCommands(program);
registerCaCommands(program);
registerConsoleCommands(program);
registerSidecarCommand(program);

program.parseAsync(process.argv).catch((err: Error) => {
  process.stderr.write(`latchkey: ${err.message}\n`);
  process.exit(1);
});

import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';

const dataDirOf = (opts: { dataDir?: string }): string =>
  resolve(opts.dataDir ?? process.env.LATCHKEY_DATA_DIR ?? './.latchkey');

const postgresInstead = (): boolean => {
  if (!process.env.LATCHKEY_DATABASE_URL) return false;
  process.stderr.write(
    'error: LATCHKEY_DATABASE_URL is set: back up and restore PostgreSQL with pg_dump and pg_restore (docs/operations.md, "Backup and restore")\n',
  );
  process.exitCode = 2;
  return true;
};

const fail = (err: unknown): void => {
  process.stderr.write(`error: ${(err as Error).message}\n`);
  process.exitCode = 2;
};

/** `latchkey backup <file>` and `latchkey restore <file>`: the embedded (SQLite) database, never the master key. */
export function registerBackupCommands(program: Command): void {
  program
    .command('backup <file>')
    .description(
      'copy the IdP’s SQLite database to <file>, while it runs (SQLite online backup); the master key is not in it',
    )
    .option('--data-dir <dir>', 'data folder (LATCHKEY_DATA_DIR, default ./.latchkey)')
    .action(async (file: string, opts: { dataDir?: string }) => {
      if (postgresInstead()) return;
      const { backupSqlite } = await import('@latchkey/server');
      try {
        const r = await backupSqlite(dataDirOf(opts), resolve(file));
        process.stdout.write(
          `backed up ${join(dataDirOf(opts), 'latchkey.db')} to ${resolve(file)} (${r.bytes} bytes); keep the master key apart from it\n`,
        );
      } catch (err) {
        fail(err);
      }
    });

  program
    .command('restore <file>')
    .description(
      'check a backup (schema, audit chain) and put it in place as the data folder’s database; the IdP must be stopped',
    )
    .option('--data-dir <dir>', 'data folder (LATCHKEY_DATA_DIR, default ./.latchkey)')
    .option('--force', 'replace the database that is there')
    .action(async (file: string, opts: { dataDir?: string; force?: boolean }) => {
      if (postgresInstead()) return;
      const { restoreSqlite, verifyAuditOffline, latchkeyVersionOf, SqliteStorage } = await import('@latchkey/server');
      // The checks read a copy: verifying applies this Latchkey's migrations, which must not touch the backup.
      const work = mkdtempSync(join(tmpdir(), 'latchkey-restore-'));
      try {
        const copy = join(work, 'check.db');
        latchkeyVersionOf(resolve(file));
        copyFileSync(resolve(file), copy);
        const chain = await verifyAuditOffline({ database: copy });
        if (!chain.ok) {
          process.stderr.write(
            `error: the backup's audit chain does not verify (first bad event ${chain.firstBad?.seq}: ${chain.firstBad?.problem}); not restored\n`,
          );
          process.exitCode = 2;
          return;
        }
        const s = new SqliteStorage(copy);
        let summary: string;
        try {
          const [clients, keys, policy] = [await s.listClients(), await s.listKeys(), await s.getPolicyVersion()];
          summary = `${clients.length} clients, ${keys.length} signing keys, policy version ${policy?.version ?? 'none'}`;
        } finally {
          await s.close();
        }
        await restoreSqlite(resolve(file), dataDirOf(opts), { force: opts.force === true });
        process.stdout.write(
          `restored ${resolve(file)} into ${join(dataDirOf(opts), 'latchkey.db')}: ${summary}, audit chain verified (${chain.checked} events)\n` +
            'start the IdP with the master key of the deployment the backup came from\n',
        );
      } catch (err) {
        fail(err);
      } finally {
        rmSync(work, { recursive: true, force: true });
      }
    });
}

import pg from 'pg';
import { randomBytes } from 'node:crypto';

/**
 * The PostgreSQL server the tests may use (LATCHKEY_TEST_DATABASE_URL, set by .ci/run). In CI
 * its absence is an error, so the PostgreSQL runs are never skipped silently.
 */
export function testDatabaseUrl(): string | undefined {
  const url = process.env.LATCHKEY_TEST_DATABASE_URL;
  if (!url && process.env.CI)
    throw new Error('LATCHKEY_TEST_DATABASE_URL must be set in CI: the PostgreSQL suite may not be skipped');
  return url;
}

/** Creates a fresh database on the test server and returns its URL, or undefined without a server. */
export async function startPostgresIfConfigured(): Promise<string | undefined> {
  const base = testDatabaseUrl();
  if (!base) return undefined;
  const name = `latchkey_t_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: base });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const u = new URL(base);
  u.pathname = `/${name}`;
  return u.toString();
}

import { LatchkeyError } from '../../errors.ts';

/**
 * SQLite errors that reach the guard: an outage (BUSY, IOERR, FULL, READONLY, ...) or a write the
 * database refused that no method expected (a constraint or trigger). Expected ones — a duplicate
 * client id — are mapped inside the methods first. Either way the request cannot be served now.
 */
const UNAVAILABLE = /^SQLITE_/;

/** Maps a SQLite failure to `storage_unavailable` (answered as 503); anything else passes. */
export function mapSqliteError(err: unknown): unknown {
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && UNAVAILABLE.test(code))
    return new LatchkeyError('storage_unavailable', `SQLite: ${code}`, { cause: err });
  if (err instanceof TypeError && /database connection is not open/.test(err.message))
    return new LatchkeyError('storage_unavailable', 'SQLite: the database is closed', { cause: err });
  return err;
}

/**
 * Wraps every async method of a storage object so that SQLite outages reject with
 * `storage_unavailable`. Applied once at construction; method bodies stay free of try/catch.
 */
export function guardSqlite<T extends object>(target: T, proto: object): void {
  for (const name of Object.getOwnPropertyNames(proto)) {
    const fn = (proto as Record<string, unknown>)[name];
    if (name === 'constructor' || typeof fn !== 'function' || fn.constructor.name !== 'AsyncFunction') continue;
    const original = fn as (...args: unknown[]) => Promise<unknown>;
    Object.defineProperty(target, name, {
      value: (...args: unknown[]) =>
        original.apply(target, args).catch((err: unknown) => Promise.reject(mapSqliteError(err))),
      writable: true,
      configurable: true,
    });
  }
}

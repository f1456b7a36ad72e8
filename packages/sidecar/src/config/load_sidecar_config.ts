import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Compile } from 'typebox/compile';
import { Settings } from 'typebox/system';
import Value from 'typebox/value';
import { isMap, isSeq, LineCounter, parseDocument } from 'yaml';
import { SidecarError } from '../errors.ts';
import { RouteTable } from '../routes/route_table.ts';
import { type SidecarConfig, SidecarConfigSchema } from './sidecar_config_schema.ts';

const check = Compile(SidecarConfigSchema);

/**
 * Environment overrides, applied over the file: what differs per deployment (and the secret,
 * which belongs in the environment or a secret store, not in a file).
 */
export const SIDECAR_ENV: Record<string, { path: string[]; integer?: boolean }> = {
  LATCHKEY_SIDECAR_ISSUER: { path: ['idp', 'issuer'] },
  LATCHKEY_SIDECAR_CLIENT_ID: { path: ['idp', 'client_id'] },
  LATCHKEY_SIDECAR_CLIENT_SECRET: { path: ['idp', 'client_secret'] },
  LATCHKEY_SIDECAR_CA_FILE: { path: ['idp', 'ca_file'] },
  LATCHKEY_SIDECAR_AUDIENCE: { path: ['audience'] },
  LATCHKEY_SIDECAR_UPSTREAM: { path: ['proxy', 'upstream'] },
  LATCHKEY_SIDECAR_PROXY_PORT: { path: ['proxy', 'listen', 'port'], integer: true },
  LATCHKEY_SIDECAR_PORT: { path: ['listen', 'port'], integer: true },
  LATCHKEY_SIDECAR_LOG_LEVEL: { path: ['log_level'] },
};

const SECRET_PATHS = new Set(['/idp/client_secret']);

/** A JSON pointer's segments (RFC 6901 §4 unescaping). */
const segments = (pointer: string): string[] =>
  pointer === ''
    ? []
    : pointer
        .slice(1)
        .split('/')
        .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));

/**
 * Reads, overrides and validates the sidecar's configuration file (YAML, or JSON, which is YAML).
 * Every problem is reported at once, each with the file, the line when there is one, and the
 * path of the bad value (`routes/2/path`); secrets are never echoed. Throws a SidecarError
 * `config_invalid`.
 */
export function loadSidecarConfig(file: string, env: NodeJS.ProcessEnv = process.env): SidecarConfig {
  const where = resolve(file);
  let text: string;
  try {
    text = readFileSync(where, 'utf8');
  } catch (err) {
    throw new SidecarError('config_invalid', `${where}: cannot be read (${(err as NodeJS.ErrnoException).code})`);
  }
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const problems = doc.errors.map((e) => {
      const at = lines.linePos(e.pos[0]);
      return `${where}:${at.line}:${at.col}: ${e.message.split('\n')[0]}`;
    });
    throw new SidecarError('config_invalid', `configuration is not valid YAML or JSON:\n${problems.join('\n')}`);
  }
  const raw: unknown = doc.toJS() ?? {};
  const input = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>;
  const problems: string[] = [];
  for (const [name, { path, integer }] of Object.entries(SIDECAR_ENV)) {
    const value = env[name];
    if (value === undefined || value === '') continue;
    let target = input;
    for (const key of path.slice(0, -1)) {
      if (typeof target[key] !== 'object' || target[key] === null) target[key] = {};
      target = target[key] as Record<string, unknown>;
    }
    if (integer && !/^\d+$/.test(value)) problems.push(`${name}: expected a whole number`);
    target[path.at(-1) as string] = integer ? Number(value) : value;
  }
  const config = Value.Default(SidecarConfigSchema, input) as SidecarConfig;
  for (const e of allErrors(config)) {
    const node = doc.getIn(segments(e.instancePath), true) as { range?: [number, number, number] } | undefined;
    const line = node && !isMap(node) && !isSeq(node) && node.range ? `:${lines.linePos(node.range[0]).line}` : '';
    const path = e.instancePath.slice(1) || '(top level)';
    const shown = SECRET_PATHS.has(e.instancePath) ? '' : valueOf(config, e.instancePath);
    problems.push(`${where}${line}: ${path}: ${e.message}${shown}`);
  }
  for (const [name, listen] of [
    ['proxy/listen', config.proxy?.listen],
    ['listen', config.listen],
    ['ext_authz/grpc/listen', config.ext_authz.grpc?.listen],
  ] as const) {
    if (listen?.tls && listen.workload_tls) problems.push(`${where}: ${name}: give tls or workload_tls, not both`);
    if (name === 'ext_authz/grpc/listen' && listen?.workload_tls)
      problems.push(`${where}: ${name}: workload_tls is not available for gRPC; use tls with files`);
  }
  if (problems.length === 0) {
    try {
      new RouteTable(config.routes);
    } catch (err) {
      problems.push(`${where}: ${(err as Error).message}`);
    }
  }
  if (!config.proxy && !config.listen && !config.ext_authz.grpc)
    problems.push(
      `${where}: nothing to serve: give proxy, listen (forward auth, AuthZEN, HTTP ext_authz) or ext_authz.grpc`,
    );
  if (problems.length > 0)
    throw new SidecarError('config_invalid', `configuration is invalid:\n${[...new Set(problems)].join('\n')}`);
  return config;
}

/** Every schema problem (TypeBox stops at 8 by default; the setting is restored before returning). */
function allErrors(config: unknown): { instancePath: string; message: string }[] {
  const saved = Settings.Get().maxErrors;
  Settings.Set({ maxErrors: 200 });
  try {
    const errors = [...check.Errors(config)];
    const unknown = errors.some((e) => e.message === 'schema is false');
    return errors
      .filter((e) => !(unknown && e.message === 'must not have additional properties'))
      .map((e) => ({
        instancePath: e.instancePath,
        message:
          e.message === 'schema is false'
            ? 'is not a known member'
            : e.message === 'must be equal to constant'
              ? 'is not one of the allowed values'
              : e.message,
      }));
  } finally {
    Settings.Set({ maxErrors: saved });
  }
}

function valueOf(config: unknown, pointer: string): string {
  let v: unknown = config;
  for (const s of segments(pointer)) v = (v as Record<string, unknown> | undefined)?.[s];
  if (v === undefined || typeof v === 'object') return '';
  // A URL's password (https://user:pass@host) is not echoed either.
  const text = JSON.stringify(v).replace(/\/\/[^/@"]*@/, '//***@');
  return ` (got ${text.length > 60 ? `${text.slice(0, 57)}...` : text})`;
}

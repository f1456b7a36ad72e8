/**
 * Writes the parts of docs/ that are made from code: the settings table of configuration.md
 * (from the configuration schema) and openapi.json (from the route schemas). Run `npm run docs`
 * after changing a setting or a route; tests fail while the committed files differ
 * (packages/server/test/config.test.ts, packages/server/test/http/openapi.test.ts).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AUDIT_EVENT_DETAILS } from '@latchkey/protocol/audit-details';
import { loadConfig, settingsMarkdown, startIdp } from '@latchkey/server';
import { SidecarConfigSchema } from '@latchkey/sidecar';

/** A schema as a file is written: members with a default are not required of it (the loader fills them in). */
function asWritten(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(asWritten);
  if (schema === null || typeof schema !== 'object') return schema;
  const s = Object.fromEntries(Object.entries(schema).map(([k, v]) => [k, asWritten(v)])) as Record<string, unknown>;
  const props = s.properties as Record<string, { default?: unknown }> | undefined;
  if (props && Array.isArray(s.required)) {
    const required = (s.required as string[]).filter((k) => props[k]?.default === undefined);
    if (required.length > 0) s.required = required;
    else delete s.required;
  }
  return s;
}

/** packages/sidecar/sidecar.schema.json: the sidecar's configuration file as a JSON Schema, for editors and validators. */
export const sidecarSchemaText = (): string =>
  `${JSON.stringify(
    {
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      title: 'Latchkey sidecar configuration',
      ...(asWritten(SidecarConfigSchema) as object),
    },
    null,
    2,
  )}\n`;

/** The OpenAPI document of the IdP as it serves it, from a throwaway instance on loopback. */
export async function openApiDocument(): Promise<unknown> {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-docs-'));
  const idp = await startIdp(loadConfig({ port: 0, tls: 'off', dataDir: dir, logLevel: 'silent' }));
  try {
    return (await fetch(`${idp.url}/openapi.json`)).json();
  } finally {
    await idp.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The committed form of the document: stable key order as served, two-space indent. */
export const openApiText = (doc: unknown): string => `${JSON.stringify(doc, null, 2)}\n`;

export const SETTINGS_BEGIN = '<!-- generated from packages/server/src/config_settings.ts by `npm run docs` -->';
export const SETTINGS_END = '<!-- end of generated table -->';

export const EVENTS_BEGIN = '<!-- generated from packages/protocol/src/audit_details.ts by `npm run docs` -->';

/** The event table of docs/audit.md: each type, when it is written, and its detail members. */
export function auditEventsMarkdown(): string {
  const rows = Object.entries(AUDIT_EVENT_DETAILS).map(([type, schema]) => {
    const s = schema as { description?: string; properties: Record<string, { description?: string }>; required?: string[] };
    const members = Object.entries(s.properties).map(([name, m]) => {
      const label = s.required?.includes(name) ? `\`${name}\`` : `*\`${name}\`*`;
      return m.description ? `${label}: ${m.description}` : label;
    });
    return `| \`${type}\` | ${s.description ?? ''} | ${members.join('; ').replace(/\|/g, '\\|')} |`;
  });
  return ['| type | written when | detail |', '| --- | --- | --- |', ...rows].join('\n');
}

/** `text` with what lies between `begin` and `end` replaced by `content`. */
export function replaceBetween(text: string, begin: string, end: string, content: string): string {
  const i = text.indexOf(begin);
  const j = text.indexOf(end);
  if (i < 0 || j < i) throw new Error(`markers not found: ${begin} … ${end}`);
  return `${text.slice(0, i + begin.length)}\n${content}\n${text.slice(j)}`;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const file = new URL('../docs/configuration.md', import.meta.url);
  writeFileSync(file, replaceBetween(readFileSync(file, 'utf8'), SETTINGS_BEGIN, SETTINGS_END, settingsMarkdown()));
  process.stdout.write('docs/configuration.md: settings table written\n');
  const audit = new URL('../docs/audit.md', import.meta.url);
  writeFileSync(audit, replaceBetween(readFileSync(audit, 'utf8'), EVENTS_BEGIN, SETTINGS_END, auditEventsMarkdown()));
  process.stdout.write('docs/audit.md: event table written\n');
  writeFileSync(new URL('../packages/sidecar/sidecar.schema.json', import.meta.url), sidecarSchemaText());
  process.stdout.write('packages/sidecar/sidecar.schema.json written\n');
  writeFileSync(new URL('../docs/openapi.json', import.meta.url), openApiText(await openApiDocument()));
  process.stdout.write('docs/openapi.json: written\n');
}

import { envName, flagName, SETTINGS, type SettingKey, settingSchema } from './config_settings.ts';

const cell = (text: string): string => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');

/**
 * The settings table of docs/configuration.md, made from the schema (`npm run docs` writes it;
 * a test fails when the committed file differs).
 */
export function settingsMarkdown(): string {
  const rows = (Object.keys(SETTINGS) as SettingKey[]).map((key) => {
    const s = settingSchema(key);
    const flag = flagName(key);
    const dflt =
      s.defaultDoc ??
      (s.default === undefined || (Array.isArray(s.default) && s.default.length === 0)
        ? '—'
        : typeof s.default === 'boolean'
          ? `\`${s.default ? 'on' : 'off'}\``
          : `\`${String(s.default)}\``);
    const bounds =
      s.minimum !== undefined
        ? ` (${s.minimum}–${s.maximum})`
        : s.enum
          ? `: ${s.enum.map((v) => `\`${v}\``).join(', ')}`
          : '';
    return `| \`${envName(key)}\` | ${flag ? `\`${flag}\`` : '—'} | ${dflt} | ${cell(s.description)}${bounds} |`;
  });
  return ['| variable | flag | default | meaning |', '| --- | --- | --- | --- |', ...rows].join('\n');
}

/**
 * Writes the parts of docs/ that are made from code: the settings table of configuration.md
 * (from the configuration schema). Run `npm run docs` after changing a setting; the test
 * packages/server/test/docs_generated.test.ts fails while the committed files differ.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { settingsMarkdown } from '../packages/server/src/config_docs.ts';

export const SETTINGS_BEGIN = '<!-- generated from packages/server/src/config_settings.ts by `npm run docs` -->';
export const SETTINGS_END = '<!-- end of generated table -->';

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
}

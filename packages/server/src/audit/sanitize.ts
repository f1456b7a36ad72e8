// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;
// eslint-disable-next-line no-control-regex
const CONTROL_ALL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;

/** Escapes control characters (C0, DEL, C1, line/paragraph separators) so input cannot forge log lines. */
export function escapeControl(text: string): string {
  if (!CONTROL.test(text)) return text;
  return text.replace(CONTROL_ALL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Whether any string in a JSON-like value, keys included, has a control character. */
function needsEscape(value: unknown): boolean {
  if (typeof value === 'string') return CONTROL.test(value);
  if (Array.isArray(value)) return value.some(needsEscape);
  if (value !== null && typeof value === 'object') {
    for (const k in value) if (CONTROL.test(k) || needsEscape((value as Record<string, unknown>)[k])) return true;
  }
  return false;
}

function escapeCopy(value: unknown): unknown {
  if (typeof value === 'string') return escapeControl(value);
  if (Array.isArray(value)) return value.map(escapeCopy);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [escapeControl(k), escapeCopy(v)]));
  }
  return value;
}

/** Applies {@link escapeControl} to every string in a JSON-like value, keys included; copies only when needed. */
export function escapeDeep(value: unknown): unknown {
  return needsEscape(value) ? escapeCopy(value) : value;
}

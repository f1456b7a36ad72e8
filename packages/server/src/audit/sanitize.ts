/** Escapes control characters (C0, DEL, C1, line/paragraph separators) so input cannot forge log lines. */
export function escapeControl(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Applies {@link escapeControl} to every string in a JSON-like value, keys included. */
export function escapeDeep(value: unknown): unknown {
  if (typeof value === 'string') return escapeControl(value);
  if (Array.isArray(value)) return value.map(escapeDeep);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [escapeControl(k), escapeDeep(v)]));
  }
  return value;
}

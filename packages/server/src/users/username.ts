/** Letters and digits of any script, and `. _ - @ +` (so an e-mail address is a username too). */
const USERNAME = /^[\p{L}\p{N}._@+-]{1,64}$/u;
/** A UUID: the form of every `sub` (admin/user_admin.ts). */
const SUB_SHAPED = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * A username as stored and shown (NFKC-normalised), or undefined when it is not acceptable.
 * NFKC so that look-alike spellings of the same name (full-width letters, ligatures) are one name.
 */
export function normaliseUsername(input: string): string | undefined {
  const name = input.normalize('NFKC');
  // Not shaped like a subject identifier: the admin API finds a user by either.
  return USERNAME.test(name) && !SUB_SHAPED.test(name) ? name : undefined;
}

/** What must be unique and what a login looks up: the normalised name in lower case. */
export const usernameKey = (username: string): string => username.normalize('NFKC').toLowerCase();

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

/** Why a password was refused: the `reason` a client sees (docs/users.md). */
export type PasswordProblem = 'too_short' | 'too_long' | 'breached' | 'contains_username';

export interface PasswordPolicyOptions {
  /** Fewest characters (Unicode code points after NFKC). NIST SP 800-63B §3.1.1.2: at least 8; 15 when it is the only factor. */
  minLength: number;
  /** Most characters; long passphrases are welcome (OWASP ASVS 5 §6.2.9: at least 64). */
  maxLength?: number;
  /** A file of further refused passwords, one per line (an operator's own breach corpus). */
  blocklistFile?: string;
}

const MESSAGES: Record<
  PasswordProblem,
  (o: Required<Pick<PasswordPolicyOptions, 'minLength' | 'maxLength'>>) => string
> = {
  too_short: (o) => `the password must have at least ${o.minLength} characters`,
  too_long: (o) => `the password must have at most ${o.maxLength} characters`,
  breached: () => 'the password is in a list of passwords exposed in breaches; choose another',
  contains_username: () => 'the password must not contain the username',
};

/**
 * The checks NIST SP 800-63B §3.1.1.2 asks for and nothing more (no composition rules, no
 * forced rotation): length, not a known-breached password, not the username. The bundled
 * breach list is the 30,000 most common passwords of leaked corpora that zxcvbn ships
 * (`zxcvbn/lib/frequency_lists`); an operator adds their own with `blocklistFile`.
 */
export class PasswordPolicy {
  private readonly options: Required<Pick<PasswordPolicyOptions, 'minLength' | 'maxLength'>> & PasswordPolicyOptions;
  private blocked: Set<string> | undefined;

  constructor(options: PasswordPolicyOptions) {
    this.options = { maxLength: 256, ...options };
  }

  /** Reads the lists now (at start) rather than on the first password. */
  load(): void {
    if (this.blocked) return;
    const require = createRequire(import.meta.url);
    const lists = require('zxcvbn/lib/frequency_lists.js') as { passwords: string[] };
    const blocked = new Set(lists.passwords.map((p) => p.toLowerCase()));
    if (this.options.blocklistFile)
      for (const line of readFileSync(this.options.blocklistFile, 'utf8').split(/\r?\n/)) {
        const entry = line.trim().normalize('NFKC').toLowerCase();
        if (entry) blocked.add(entry);
      }
    this.blocked = blocked;
  }

  /** The first rule the password breaks, with its message; undefined when it may be used. */
  check(password: string, username?: string): { problem: PasswordProblem; message: string } | undefined {
    const normal = password.normalize('NFKC');
    const length = [...normal].length;
    const folded = normal.toLowerCase();
    let problem: PasswordProblem | undefined;
    if (length < this.options.minLength) problem = 'too_short';
    else if (length > this.options.maxLength) problem = 'too_long';
    else if (username && folded.includes(username.normalize('NFKC').toLowerCase())) problem = 'contains_username';
    else {
      this.load();
      if (this.blocked?.has(folded)) problem = 'breached';
    }
    return problem ? { problem, message: MESSAGES[problem](this.options) } : undefined;
  }
}

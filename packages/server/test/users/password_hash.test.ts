import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { OWASP_SCRYPT, PasswordHasher } from '../../src/users/password_hash.ts';

const exec = promisify(execFile);

/** Python's hashlib.scrypt (OpenSSL's), given the PHC string's parts: an implementation no one here wrote. */
async function pythonScrypt(password: string, phc: string): Promise<string> {
  const script = `
import base64, hashlib, sys
_, alg, params, salt, key = sys.argv[2].split('$')
p = dict(kv.split('=') for kv in params.split(','))
pad = lambda s: s + '=' * (-len(s) % 4)
n, r, par = 2 ** int(p['ln']), int(p['r']), int(p['p'])
out = hashlib.scrypt(sys.argv[1].encode(), salt=base64.b64decode(pad(salt)), n=n, r=r, p=par, maxmem=256 * 1024 * 1024, dklen=len(base64.b64decode(pad(key))))
print(base64.b64encode(out).decode().rstrip('='))
`;
  return (await exec('python3', ['-c', script, password, phc])).stdout.trim();
}

test('hashes are PHC scrypt strings at OWASP’s parameters (N = 2^17, r = 8, p = 1), salted, and equal to Python’s hashlib.scrypt', async () => {
  const hasher = new PasswordHasher();
  assert.deepEqual(hasher.cost, { ln: 17, r: 8, p: 1 });
  assert.deepEqual(OWASP_SCRYPT, { ln: 17, r: 8, p: 1 });
  const a = await hasher.hash('correct horse battery staple');
  const b = await hasher.hash('correct horse battery staple');
  assert.match(a, /^\$scrypt\$ln=17,r=8,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/);
  assert.notEqual(a, b, 'a fresh salt each time');
  assert.equal(await pythonScrypt('correct horse battery staple', a), a.split('$')[4]);
});

test('verify: the right password only; unknown users and foreign or tampered strings are false after the same work', async () => {
  const hasher = new PasswordHasher({ ln: 14, r: 8, p: 1 });
  const stored = await hasher.hash('Tr0ub4dor&3-but-longer');
  assert.equal(await hasher.verify('Tr0ub4dor&3-but-longer', stored), true);
  assert.equal(await hasher.verify('Tr0ub4dor&3-but-longer ', stored), false);
  assert.equal(await hasher.verify('', stored), false);
  assert.equal(await hasher.verify('Tr0ub4dor&3-but-longer', null), false);
  const [, alg, params, salt, key] = stored.split('$');
  const flipped = `${key?.[0] === 'A' ? 'B' : 'A'}${key?.slice(1)}`;
  for (const bad of [
    `$${alg}$${params}$${salt}$${flipped}`, // another hash
    `$${alg}$ln=30,r=8,p=1$${salt}$${key}`, // a cost beyond the limits: not run
    `$${alg}$ln=20,r=16,p=4$${salt}$${key}`, // within each limit, 2 GiB together: not run
    `$argon2id$v=19$m=65536,t=3,p=4$${salt}$${key}`,
    'plaintext',
  ])
    assert.equal(await hasher.verify('Tr0ub4dor&3-but-longer', bad), false, bad);
  // Unicode: NFKC-equal spellings are one password (NIST SP 800-63B §3.1.1.2).
  const accented = await hasher.hash('caf\u00e9-au-lait-please');
  assert.equal(await hasher.verify('cafe\u0301-au-lait-please', accented), true);
});

test('needsRehash: a hash of another cost verifies but asks to be redone', async () => {
  const old = new PasswordHasher({ ln: 14, r: 8, p: 1 });
  const stored = await old.hash('a long enough passphrase');
  const current = new PasswordHasher({ ln: 15, r: 8, p: 1 });
  assert.equal(await current.verify('a long enough passphrase', stored), true);
  assert.equal(current.needsRehash(stored), true);
  assert.equal(current.needsRehash(await current.hash('x')), false);
});

test('at most `concurrency` hashes run at once; the rest wait their turn and all finish', async () => {
  const hasher = new PasswordHasher({ ln: 14, r: 8, p: 1 }, 2);
  let running = 0;
  let most = 0;
  const slot = (hasher as unknown as { slot: <T>(w: () => Promise<T>) => Promise<T> }).slot.bind(hasher);
  const results = await Promise.all(
    Array.from({ length: 6 }, (_, i) =>
      slot(async () => {
        running++;
        most = Math.max(most, running);
        await new Promise((r) => setTimeout(r, 20));
        running--;
        return i;
      }),
    ),
  );
  assert.deepEqual(results, [0, 1, 2, 3, 4, 5]);
  assert.equal(most, 2);
});

/**
 * `npm run demo`: a small estate on loopback and a narrated scenario (docs: README, "See it work").
 * `--ci`: no waiting for Ctrl-C; each step is also printed as a JSON line (`DEMO {...}`) and the
 * exit code says whether every step did what it says.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runDemo, type Step } from './scenario.ts';

const ci = process.argv.includes('--ci');
const steps: Step[] = [];
const estate = await runDemo((s) => {
  steps.push(s);
  console.log(`${s.ok ? '✔' : '✘'} ${s.says}`);
  if (ci) console.log(`DEMO ${JSON.stringify(s)}`);
});
const failed = steps.filter((s) => !s.ok);
console.log(
  `\n${failed.length === 0 ? 'Every step did what it says.' : `${failed.length} steps did not: ${failed.map((s) => s.step).join(', ')}`}`,
);
const stop = async () => {
  await estate.stop();
  if (ci) console.log(`DEMO ${JSON.stringify({ step: 'stopped', ok: true, says: 'stopped', pids: estate.pids })}`);
  process.exit(failed.length === 0 ? 0 : 1);
};
if (ci) await stop();
else {
  // The admin token goes to a file only the user can read, never to the terminal (or a log of it).
  const tokenFile = join(estate.dataDir, 'admin-token');
  writeFileSync(tokenFile, `${estate.adminToken}\n`, { mode: 0o600 });
  console.log(`\nThe admin console: ${estate.issuer}/console/`);
  console.log(`Sign in once with this link (10 minutes): ${await estate.consoleLink()}`);
  console.log(`  (your browser will warn about the demo's own CA: ${estate.dataDir}/ca.pem; another link:`);
  console.log(`   LATCHKEY_URL=${estate.issuer} LATCHKEY_ADMIN_TOKEN=$(cat ${tokenFile}) npm run -s latchkey -- console link)`);
  console.log(`\nThe IdP stays up at ${estate.issuer}; its admin token is in ${tokenFile}.`);
  console.log('Try: curl --cacert', `${estate.dataDir}/ca.pem`, `${estate.issuer}/.well-known/openid-configuration`);
  console.log('Ctrl-C stops every process.');
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());
}

/**
 * `npm run soak -- <duration>`: the replicas soak of issue 18 for as long as asked (`90s`, `10m`,
 * `2h`; default 10m). Prints the report as JSON and the problems found; exits 1 when there are any.
 * Options through the environment: SOAK_RATE (tokens/s, 40), SOAK_SERVICES (20),
 * SOAK_REPLICAS_PER_SERVICE (3), SOAK_REPLICAS (3), SOAK_ROTATION (key rotation, s, 30).
 */
import { runSoak, soakProblems } from './soak.ts';

function seconds(arg: string | undefined): number {
  const m = /^(\d+)(s|m|h)?$/.exec(arg ?? '10m');
  if (!m) throw new Error(`duration: give e.g. 90s, 10m or 2h (got ${arg})`);
  return Number(m[1]) * { s: 1, m: 60, h: 3600 }[(m[2] ?? 's') as 's' | 'm' | 'h'];
}

const env = (name: string, dflt: number) => (process.env[name] ? Number(process.env[name]) : dflt);
const durationSeconds = seconds(process.argv[2]);
const report = await runSoak({
  durationSeconds,
  issuanceRate: env('SOAK_RATE', 40),
  services: env('SOAK_SERVICES', 20),
  replicasPerService: env('SOAK_REPLICAS_PER_SERVICE', 3),
  replicas: env('SOAK_REPLICAS', 3),
  keyRotationInterval: env('SOAK_ROTATION', 30),
  log: (line) => console.error(line),
});
console.log(JSON.stringify(report, null, 2));
const problems = soakProblems(report);
for (const p of problems) console.error(`soak problem: ${p}`);
console.error(problems.length === 0 ? 'soak: passed' : `soak: ${problems.length} problems`);
process.exit(problems.length === 0 ? 0 : 1);

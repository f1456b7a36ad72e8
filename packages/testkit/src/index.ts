export { startTestIdp, freePort, type TestIdp, type TestIdpOptions } from './test_idp.ts';
export { tlsFetch } from './tls_fetch.ts';
export { startPostgresIfConfigured, testDatabaseUrl } from './postgres.ts';
export { basicAuth } from './basic_auth.ts';
export { serveCli, TSX, CLI_MAIN, type ServedCli } from './serve_cli.ts';
export { workloadCsr } from './workload_csr.ts';
export { assertTlsProfile } from './tls_profile.ts';
export { auditEvents } from './audit_events.ts';
export { FakeClock } from './fake_clock.ts';

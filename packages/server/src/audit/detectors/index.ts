import type { Config } from '../../config.ts';
import { assertionReplay } from './assertion_replay.ts';
import { deniedDecisionsBurst } from './denied_decisions_burst.ts';
import { failedAuthBurst } from './failed_auth_burst.ts';
import { identityMismatch } from './identity_mismatch.ts';
import { issuanceSpike } from './issuance_spike.ts';
import { refreshTokenReuse } from './refresh_token_reuse.ts';
import { passwordSpraying } from './password_spraying.ts';
import { credentialStuffing } from './credential_stuffing.ts';
import { newSourceLogin } from './new_source_login.ts';
import { revokedCredentialUse } from './revoked_credential_use.ts';
import type { Detector } from './types.ts';

export type { Detector, DetectorName, Finding } from './types.ts';

/** Every detector, with its thresholds from configuration. */
export function buildDetectors(
  config: Pick<
    Config,
    | 'detectAuthFailures'
    | 'detectAuthWindow'
    | 'detectDenials'
    | 'detectDenialWindow'
    | 'detectIssuanceFactor'
    | 'detectIssuanceWindow'
    | 'detectIssuanceMin'
    | 'detectSprayUsers'
    | 'detectSprayWindow'
    | 'detectStuffingFailures'
    | 'detectStuffingWindow'
    | 'detectNewSourceLogins'
  >,
): Detector[] {
  return [
    failedAuthBurst({ threshold: config.detectAuthFailures, windowSeconds: config.detectAuthWindow }),
    issuanceSpike({
      factor: config.detectIssuanceFactor,
      windowSeconds: config.detectIssuanceWindow,
      min: config.detectIssuanceMin,
    }),
    deniedDecisionsBurst({ threshold: config.detectDenials, windowSeconds: config.detectDenialWindow }),
    revokedCredentialUse(),
    assertionReplay(),
    identityMismatch(),
    refreshTokenReuse(),
    passwordSpraying({ users: config.detectSprayUsers, windowSeconds: config.detectSprayWindow }),
    credentialStuffing({ failures: config.detectStuffingFailures, windowSeconds: config.detectStuffingWindow }),
    ...(config.detectNewSourceLogins ? [newSourceLogin()] : []),
  ];
}

import { randomBytes } from 'node:crypto';
import { sha256 } from '../../secrets.ts';
import { type Clock, epochSeconds } from '@latchkey/protocol';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { aboutUser, type ServerEvents } from '../../events.ts';
import { type FormBody, parseForm } from '../../http/form.ts';
import type {
  AuthorizationCodeStore,
  ClientStore,
  PushedRequestStore,
  UserRecord,
  UserStore,
} from '../../storage/ports.ts';
import { REQUEST_URI_PREFIX } from './par_endpoint.ts';
import type { KnownDevices } from '../../users/known_device.ts';
import type { Sessions } from '../../users/sessions.ts';
import { RECOVERY_CODE_COUNT, type SecondFactors } from '../../users/second_factor.ts';
import type { PasswordHasher } from '../../users/password_hash.ts';
import type { LoginContext, PasswordLogin } from '../../users/password_login.ts';
import type { PasswordPolicy } from '../../users/password_policy.ts';
import type { Consents } from '../../users/consents.ts';
import {
  type AuthorizationRequest,
  AuthorizeError,
  checkAuthorizationRequest,
  type RawParams,
  responseUri,
} from './authorization_request.ts';
import {
  consentPage,
  enrolPage,
  errorPage,
  loginPage,
  pageSchema as sharedPageSchema,
  sendBack,
  sendPage,
  passwordChangePage,
  recoveryCodesPage,
  secondFactorPage,
} from './login_page.ts';
import { type LoginTransaction, LoginTransactions } from './login_transaction.ts';
import type { PageCookies } from './cookies.ts';

export interface AuthorizeDeps {
  issuer: string;
  clock: Clock;
  clients: Pick<ClientStore, 'getClient'>;
  users: Pick<UserStore, 'getUser' | 'updateUser'>;
  codes: Pick<AuthorizationCodeStore, 'saveAuthorizationCode'>;
  pushed: Pick<PushedRequestStore, 'usePushedRequest'>;
  login: Pick<PasswordLogin, 'login' | 'succeeded' | 'locked' | 'secondFactorFailed'>;
  transactions: LoginTransactions;
  devices: KnownDevices;
  policy: Pick<PasswordPolicy, 'check'>;
  hasher: Pick<PasswordHasher, 'hash'>;
  events: ServerEvents;
  cookies: PageCookies;
  /** Seconds an authorization code lives (RFC 6749 §4.1.2: short, at most 10 minutes). */
  codeTtl: number;
  sessions: Pick<Sessions, 'start' | 'current' | 'lifetime'>;
  consents: Pick<Consents, 'needed' | 'grant' | 'denied'>;
  secondFactors: Pick<
    SecondFactors,
    | 'required'
    | 'offer'
    | 'show'
    | 'enrol'
    | 'verify'
    | 'passkeyCreation'
    | 'passkeyRequest'
    | 'enrolPasskey'
    | 'verifyPasskey'
  >;
}

/** The query of a GET as parameters: every name with all its values (RFC 6749 §3.1 refuses repeats later). */
export const queryOf = (request: FastifyRequest): FormBody => parseForm(request.url.split('?')[1] ?? '');

const single = (form: FormBody, name: string): string | undefined => {
  const v = form.get(name);
  return v && v.length === 1 ? v[0] : undefined;
};

const BACK = 'the browser sent back to the redirect URI with code, state and iss (or an error)';
const pageSchema = (summary: string, form: boolean) => sharedPageSchema(summary, form, BACK);

/** A later step of a sign-in: its transaction, what is done so far, the user, the sealed form. */
interface Step {
  tx: LoginTransaction;
  auth: NonNullable<LoginTransaction['authenticated']>;
  user: UserRecord;
  sealed: string;
}

/**
 * The authorization endpoint (RFC 6749 §3.1, §4.1; OpenID Connect Core §3.1.2) with its sign-in
 * form: `GET|POST /authorize` checks the request and shows the form; `POST /authorize/login`
 * checks the password (lockout first), and either asks for a new password (when an administrator
 * set the old one) at `POST /authorize/password` or sends the browser back with a single-use code
 * and `iss` (RFC 9207). A third-party client (`consent_required`) gets its code only once the
 * user agreed to what it asks for (`POST /authorize/consent`); the estate's own clients never ask.
 */
export function registerAuthorizeEndpoints(app: FastifyInstance, deps: AuthorizeDeps): void {
  const html = sendPage;
  const clientName = async (clientId: string) => {
    const c = await deps.clients.getClient(clientId);
    return c?.metadata.client_name ?? clientId;
  };
  const context = (request: FastifyRequest, clientId: string): LoginContext => {
    const device = deps.cookies.read(request, 'device');
    return {
      clientId,
      requestId: request.id,
      sourceIp: request.ip,
      knownDevice: (sub) => deps.devices.knows(device, sub),
    };
  };

  const authorize = async (request: FastifyRequest, reply: FastifyReply, params: RawParams) => {
    const clientId = params.get('client_id')?.[0];
    const client = clientId && clientId.length <= 255 ? await deps.clients.getClient(clientId) : undefined;
    let checked: AuthorizationRequest;
    try {
      const requestUri = params.get('request_uri');
      if (requestUri) {
        // RFC 9126 §4: the pushed request, once, for the client that pushed it; nothing else of this URL counts.
        const ref = requestUri.length === 1 ? (requestUri[0] as string) : '';
        const pushed = ref.startsWith(REQUEST_URI_PREFIX)
          ? await deps.pushed.usePushedRequest(sha256(ref.slice(REQUEST_URI_PREFIX.length)), epochSeconds(deps.clock))
          : undefined;
        if (!pushed || !client || pushed.clientId !== client.clientId || client.disabled)
          throw new AuthorizeError('invalid_request', 'request_uri is unknown, used, expired, or not this client’s');
        checked = pushed.request as AuthorizationRequest;
      } else {
        checked = checkAuthorizationRequest(params, client, client?.metadata.scope);
        if (client?.metadata.require_pushed_authorization_requests)
          throw new AuthorizeError('invalid_request', 'this client must push its authorization requests (RFC 9126)', {
            uri: checked.redirectUri,
            state: checked.state,
          });
      }
    } catch (err) {
      if (!(err instanceof AuthorizeError)) throw err;
      if (!err.redirect) return html(reply, 400, errorPage('This sign-in link is not valid', err.message));
      return sendBack(
        reply,
        responseUri(err.redirect.uri, {
          error: err.error,
          error_description: err.message,
          state: err.redirect.state,
          iss: deps.issuer,
        }),
      );
    }
    // Single sign-on: a live session answers at once, unless the client asks for a new sign-in
    // (prompt=login) or the last one is older than it accepts (max_age, OpenID Connect Core §3.1.2.1).
    const session = await deps.sessions.current(deps.cookies.read(request, 'session'));
    const fresh = session && (checked.maxAge === null || epochSeconds(deps.clock) - session.authTime <= checked.maxAge);
    if (session && fresh && checked.prompt !== 'login') {
      const user = await deps.users.getUser(session.sub);
      if (user && !user.disabled) return finish(request, reply, checked, user, session.authTime, { sid: session.sid });
    }
    if (checked.prompt === 'none')
      return sendBack(
        reply,
        responseUri(checked.redirectUri, {
          error: 'login_required',
          error_description: 'the user must sign in',
          state: checked.state,
          iss: deps.issuer,
        }),
      );
    const csrf = LoginTransactions.csrfValue();
    deps.cookies.set(reply, 'csrf', csrf, 600);
    const tx = deps.transactions.seal(checked, csrf, deps.clock.now());
    return html(reply, 200, loginPage({ tx, clientName: await clientName(checked.clientId) }), checked.redirectUri);
  };

  app.get(
    '/authorize',
    {
      config: { credential: 'none' },
      schema: pageSchema('RFC 6749 §4.1.1 authorization request: the sign-in page', false),
    },
    (request, reply) => authorize(request, reply, queryOf(request)),
  );
  app.post(
    '/authorize',
    {
      config: { credential: 'none' },
      schema: pageSchema('the authorization request as a form post (OpenID Connect Core §3.1.2.1)', true),
    },
    (request, reply) => authorize(request, reply, request.body as FormBody),
  );

  /**
   * The user is authenticated: after a password (no `sid` given) a session starts and the device is
   * remembered; with a session, it is reused. Then consent, when a third-party client asks for
   * something the user has not agreed to, and the code.
   */
  const finish = async (
    request: FastifyRequest,
    reply: FastifyReply,
    req: AuthorizationRequest,
    user: UserRecord,
    authTime: number,
    how: { sid?: string; passwordChanged?: boolean; method?: string; csrf?: string },
  ) => {
    let sid = how.sid;
    if (!sid) {
      const started = await deps.sessions.start(user.sub, authTime);
      sid = started.session.sid;
      deps.cookies.set(reply, 'session', started.cookie, deps.sessions.lifetime);
      deps.cookies.set(reply, 'device', deps.devices.issue(user.sub, deps.clock.now()), 400 * 86400);
    }
    await deps.login.succeeded(user, context(request, req.clientId), {
      passwordChanged: how.passwordChanged ?? false,
      method: how.sid ? 'session' : (how.method ?? 'password'),
    });
    const client = await deps.clients.getClient(req.clientId);
    const ask = { scope: req.scope, resource: req.resource, prompt: req.consentPrompt ?? false };
    if (await deps.consents.needed(client, user.sub, ask)) {
      // OpenID Connect Core §3.1.2.6: a request that may show nothing cannot ask.
      if (req.prompt === 'none')
        return sendBack(
          reply,
          responseUri(req.redirectUri, {
            error: 'consent_required',
            error_description: 'the user must agree to what the application asks for',
            state: req.state,
            iss: deps.issuer,
          }),
        );
      let csrf = how.csrf ?? deps.cookies.read(request, 'csrf');
      if (!csrf) {
        csrf = LoginTransactions.csrfValue();
        deps.cookies.set(reply, 'csrf', csrf, 600);
      }
      const tx = deps.transactions.seal(req, csrf, deps.clock.now(), { sub: user.sub, authTime, next: 'consent', sid });
      return html(
        reply,
        200,
        consentPage({
          tx,
          clientName: client?.metadata.client_name ?? req.clientId,
          username: user.username,
          scopes: req.scope ? req.scope.split(' ') : [],
          resources: req.resource,
        }),
        req.redirectUri,
      );
    }
    return issueCode(reply, req, user, authTime, sid);
  };

  /** A single-use code for the user, the browser sent back with it (RFC 6749 §4.1.2). */
  const issueCode = async (
    reply: FastifyReply,
    req: AuthorizationRequest,
    user: UserRecord,
    authTime: number,
    sid: string,
  ) => {
    const code = randomBytes(32).toString('base64url');
    await deps.codes.saveAuthorizationCode({
      codeHash: sha256(code),
      clientId: req.clientId,
      sub: user.sub,
      redirectUri: req.redirectUri,
      codeChallenge: req.codeChallenge,
      scope: req.scope,
      nonce: req.nonce,
      resource: req.resource.length > 0 ? req.resource : null,
      authTime,
      expiresAt: epochSeconds(deps.clock) + deps.codeTtl,
      sid,
    });
    return sendBack(reply, responseUri(req.redirectUri, { code, state: req.state, iss: deps.issuer }));
  };

  const staleForm = (reply: FastifyReply) =>
    html(
      reply,
      403,
      errorPage(
        'This sign-in form is no longer valid',
        'It has expired or was not opened in this browser. Go back to the application and sign in again.',
      ),
    );

  /**
   * After the password: a new one when an administrator set it, then the second factor (or its
   * enrolment, when one is required and none is set up), then the code.
   */
  const afterPassword = async (
    request: FastifyRequest,
    reply: FastifyReply,
    tx: LoginTransaction,
    user: UserRecord,
    authTime: number,
    passwordChanged: boolean,
  ) => {
    const seal = (next: NonNullable<LoginTransaction['authenticated']>) =>
      deps.transactions.seal(tx.request, tx.csrf, deps.clock.now(), next);
    const base = { sub: user.sub, authTime, passwordChanged };
    if (user.mustChangePassword && !passwordChanged)
      return html(
        reply,
        200,
        passwordChangePage({ tx: seal({ ...base, next: 'password_change' }) }),
        tx.request.redirectUri,
      );
    const client = await deps.clients.getClient(tx.request.clientId);
    if (!(await deps.secondFactors.required(user, client)))
      return finish(request, reply, tx.request, user, authTime, { passwordChanged, csrf: tx.csrf });
    return secondStep(reply, tx, user, base);
  };

  /** The second step's page: the factors the user has — or, with none, enrolling one. */
  const secondStep = async (
    reply: FastifyReply,
    tx: LoginTransaction,
    user: UserRecord,
    base: { sub: string; authTime: number; passwordChanged?: boolean },
    error?: { status: number; text: string },
  ) => {
    const seal = (next: NonNullable<LoginTransaction['authenticated']>) =>
      deps.transactions.seal(tx.request, tx.csrf, deps.clock.now(), next);
    const passkey = await deps.secondFactors.passkeyRequest(user);
    if (user.totpSecret !== null || passkey)
      return html(
        reply,
        error?.status ?? 200,
        secondFactorPage({
          tx: seal({ ...base, next: 'second_factor', ...(passkey ? { passkeyChallenge: passkey.challenge } : {}) }),
          totp: user.totpSecret !== null,
          ...(passkey ? { passkey: passkey.options } : {}),
          ...(error ? { error: error.text } : {}),
        }),
        tx.request.redirectUri,
      );
    return enrolmentPage(reply, tx, user, { ...base, next: 'enrol' }, undefined, error);
  };

  /**
   * The enrolment page: TOTP (a new secret, or the one already offered when its first code was
   * wrong) and a passkey, each with what its form needs sealed into the transaction.
   */
  const enrolmentPage = async (
    reply: FastifyReply,
    tx: LoginTransaction,
    user: UserRecord,
    auth: NonNullable<LoginTransaction['authenticated']>,
    offered: string | undefined,
    error?: { status: number; text: string },
  ) => {
    const totp = offered
      ? { secret: offered, ...(await deps.secondFactors.show(user, offered)) }
      : await deps.secondFactors.offer(user);
    const creation = await deps.secondFactors.passkeyCreation(user);
    const sealed = deps.transactions.seal(tx.request, tx.csrf, deps.clock.now(), {
      ...auth,
      next: 'enrol',
      offered: totp.secret,
      passkeyChallenge: creation.challenge,
    });
    return html(
      reply,
      error?.status ?? 200,
      enrolPage({
        tx: sealed,
        qr: totp.qr,
        text: totp.text,
        passkey: creation.options,
        ...(error ? { error: error.text } : {}),
      }),
      tx.request.redirectUri,
    );
  };

  /** The lockout's answer before a second factor is checked: the page again with the wait, or undefined. */
  const lockedOut = async (reply: FastifyReply, at: Step, ctx: LoginContext) => {
    const locked = await deps.login.locked(at.user, ctx);
    if (!locked) return undefined;
    reply.header('retry-after', String(locked));
    return secondStep(reply, at.tx, at.user, at.auth, {
      status: 429,
      text: `Too many attempts. Try again in ${locked} seconds.`,
    });
  };

  /** A factor enrolled: its event, then the recovery codes, shown once, and the way on. */
  const enrolmentEvent = (request: FastifyRequest, at: Step, factor: 'totp' | 'passkey') =>
    deps.events.stage('user.second_factor_enrolled', {
      ...aboutUser(`User::${JSON.stringify(at.user.sub)}`, at.user.sub, request),
      client_id: at.tx.request.clientId,
      detail: { username: at.user.username, factor, recovery_codes: RECOVERY_CODE_COUNT },
    });
  const showRecoveryCodes = (reply: FastifyReply, at: Step, factor: 'totp' | 'passkey', recovery: string[]) => {
    const done = deps.transactions.seal(at.tx.request, at.tx.csrf, deps.clock.now(), {
      ...at.auth,
      next: 'done',
      offered: undefined,
      passkeyChallenge: undefined,
      method: `password+${factor}`,
    });
    return html(reply, 200, recoveryCodesPage({ tx: done, codes: recovery }), at.tx.request.redirectUri);
  };

  /** The transaction of a later step's form, at the step it expects, with its user still able to sign in. */
  const step = async (
    request: FastifyRequest,
    next: NonNullable<LoginTransaction['authenticated']>['next'],
  ): Promise<Step | undefined> => {
    const sealed = single(request.body as FormBody, 'tx');
    const tx = deps.transactions.open(sealed, deps.cookies.read(request, 'csrf'), deps.clock.now());
    if (!tx || tx === 'expired' || tx.authenticated?.next !== next) return undefined;
    const user = await deps.users.getUser(tx.authenticated.sub);
    if (!user || user.disabled) return undefined;
    return { tx, auth: tx.authenticated, user, sealed: sealed as string };
  };

  app.post(
    '/authorize/login',
    { config: { credential: 'none' }, schema: pageSchema('the sign-in form: username and password', true) },
    async (request, reply) => {
      const form = request.body as FormBody;
      const tx = deps.transactions.open(single(form, 'tx'), deps.cookies.read(request, 'csrf'), deps.clock.now());
      if (!tx || tx === 'expired' || tx.authenticated) return staleForm(reply);
      const username = single(form, 'username') ?? '';
      const password = single(form, 'password') ?? '';
      const name = await clientName(tx.request.clientId);
      const again = (status: number, error: string) =>
        html(
          reply,
          status,
          loginPage({ tx: single(form, 'tx') as string, clientName: name, error, username: username.slice(0, 256) }),
          tx.request.redirectUri,
        );
      if (!username || !password || password.length > 1024) return again(400, 'Enter your username and password.');
      const outcome = await deps.login.login(username, password, context(request, tx.request.clientId));
      if (!outcome.ok) {
        if (outcome.reason === 'locked') {
          reply.header('retry-after', String(outcome.retryAfter));
          return again(429, `Too many attempts. Try again in ${outcome.retryAfter} seconds.`);
        }
        return again(401, 'The username or password is wrong.');
      }
      return afterPassword(request, reply, tx, outcome.user, epochSeconds(deps.clock), false);
    },
  );

  app.post(
    '/authorize/password',
    {
      config: { credential: 'none' },
      schema: pageSchema('a new password, when an administrator set the old one', true),
    },
    async (request, reply) => {
      const at = await step(request, 'password_change');
      if (!at) return staleForm(reply);
      const { user } = at;
      const form = request.body as FormBody;
      const password = single(form, 'new_password') ?? '';
      const confirm = single(form, 'confirm_password') ?? '';
      const again = (error: string) =>
        html(reply, 400, passwordChangePage({ tx: at.sealed, error }), at.tx.request.redirectUri);
      if (password !== confirm) return again('The two passwords are not the same.');
      const refused = deps.policy.check(password, user.username);
      if (refused) return again(`${refused.message.charAt(0).toUpperCase()}${refused.message.slice(1)}.`);
      const now = epochSeconds(deps.clock);
      const changed: UserRecord = {
        ...user,
        passwordHash: await deps.hasher.hash(password),
        passwordChangedAt: now,
        mustChangePassword: false,
        updatedAt: now,
      };
      const event = deps.events.stage('user.password_set', {
        ...aboutUser(`User::${JSON.stringify(user.sub)}`, user.sub, request),
        detail: { username: user.username, generated: false, must_change: false },
      });
      // No revocation here: the administrator's reset that required this change revoked the user's tokens.
      await deps.users.updateUser(changed, [event]);
      deps.events.committed(event);
      return afterPassword(request, reply, at.tx, changed, at.auth.authTime, true);
    },
  );

  app.post(
    '/authorize/second-factor',
    { config: { credential: 'none' }, schema: pageSchema('the second step: a TOTP code or a recovery code', true) },
    async (request, reply) => {
      const at = await step(request, 'second_factor');
      if (!at) return staleForm(reply);
      const ctx = context(request, at.tx.request.clientId);
      const held = await lockedOut(reply, at, ctx);
      if (held) return held;
      const used = await deps.secondFactors.verify(at.user, single(request.body as FormBody, 'code') ?? '');
      if (!used) {
        await deps.login.secondFactorFailed(at.user, ctx, 'code');
        return secondStep(reply, at.tx, at.user, at.auth, {
          status: 401,
          text: 'That code is not right, or was used already.',
        });
      }
      return finish(request, reply, at.tx.request, at.user, at.auth.authTime, {
        passwordChanged: at.auth.passwordChanged ?? false,
        method: `password+${used}`,
        csrf: at.tx.csrf,
      });
    },
  );

  app.post(
    '/authorize/enrol',
    { config: { credential: 'none' }, schema: pageSchema('enrolling a TOTP authenticator at sign-in', true) },
    async (request, reply) => {
      const at = await step(request, 'enrol');
      if (!at?.auth.offered) return staleForm(reply);
      const event = enrolmentEvent(request, at, 'totp');
      const code = single(request.body as FormBody, 'code') ?? '';
      const enrolled = await deps.secondFactors.enrol(at.user, at.auth.offered, code, [event]);
      if (!enrolled)
        return enrolmentPage(reply, at.tx, at.user, at.auth, at.auth.offered, {
          status: 400,
          text: 'That code is not right. Try the next one the app shows.',
        });
      deps.events.committed(event);
      return showRecoveryCodes(reply, at, 'totp', enrolled.recovery);
    },
  );

  app.post(
    '/authorize/passkey',
    { config: { credential: 'none' }, schema: pageSchema('the second step with a passkey (WebAuthn assertion)', true) },
    async (request, reply) => {
      const at = await step(request, 'second_factor');
      if (!at?.auth.passkeyChallenge) return staleForm(reply);
      const ctx = context(request, at.tx.request.clientId);
      const held = await lockedOut(reply, at, ctx);
      if (held) return held;
      const credential = single(request.body as FormBody, 'credential') ?? '';
      if (
        credential.length > 16_384 ||
        !(await deps.secondFactors.verifyPasskey(at.user, credential, at.auth.passkeyChallenge))
      ) {
        await deps.login.secondFactorFailed(at.user, ctx, 'passkey');
        return secondStep(reply, at.tx, at.user, at.auth, { status: 401, text: 'The passkey was not accepted.' });
      }
      return finish(request, reply, at.tx.request, at.user, at.auth.authTime, {
        passwordChanged: at.auth.passwordChanged ?? false,
        method: 'password+passkey',
        csrf: at.tx.csrf,
      });
    },
  );

  app.post(
    '/authorize/enrol-passkey',
    {
      config: { credential: 'none' },
      schema: pageSchema('enrolling a passkey at sign-in (WebAuthn registration)', true),
    },
    async (request, reply) => {
      const at = await step(request, 'enrol');
      if (!at?.auth.passkeyChallenge) return staleForm(reply);
      const event = enrolmentEvent(request, at, 'passkey');
      const credential = single(request.body as FormBody, 'credential') ?? '';
      const enrolled =
        credential.length <= 16_384
          ? await deps.secondFactors.enrolPasskey(at.user, credential, at.auth.passkeyChallenge, [event])
          : undefined;
      if (!enrolled)
        return enrolmentPage(reply, at.tx, at.user, at.auth, at.auth.offered, {
          status: 400,
          text: 'The passkey could not be set up. Try again.',
        });
      deps.events.committed(event);
      return showRecoveryCodes(reply, at, 'passkey', enrolled.recovery);
    },
  );

  app.post(
    '/authorize/continue',
    { config: { credential: 'none' }, schema: pageSchema('on to the application, after the recovery codes', true) },
    async (request, reply) => {
      const at = await step(request, 'done');
      if (!at) return staleForm(reply);
      return finish(request, reply, at.tx.request, at.user, at.auth.authTime, {
        passwordChanged: at.auth.passwordChanged ?? false,
        method: at.auth.method ?? 'password',
        csrf: at.tx.csrf,
      });
    },
  );

  app.post(
    '/authorize/consent',
    {
      config: { credential: 'none' },
      schema: pageSchema('consent: the user allows or denies what a third-party client asks for', true),
    },
    async (request, reply) => {
      const at = await step(request, 'consent');
      const decision = single(request.body as FormBody, 'decision');
      if (!at?.auth.sid || (decision !== 'allow' && decision !== 'deny')) return staleForm(reply);
      const req = at.tx.request;
      const ask = { scope: req.scope, resource: req.resource };
      if (decision === 'deny') {
        await deps.consents.denied(request, at.user.sub, req.clientId, ask);
        // RFC 6749 §4.1.2.1: the resource owner denied the request.
        return sendBack(
          reply,
          responseUri(req.redirectUri, {
            error: 'access_denied',
            error_description: 'the user did not allow the application what it asked for',
            state: req.state,
            iss: deps.issuer,
          }),
        );
      }
      await deps.consents.grant(request, at.user.sub, req.clientId, ask);
      return issueCode(reply, req, at.user, at.auth.authTime, at.auth.sid);
    },
  );
}

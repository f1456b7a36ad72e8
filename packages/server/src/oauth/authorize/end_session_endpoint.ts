import { type Clock, epochSeconds } from '@latchkey/protocol';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { aboutUser, type ServerEvents } from '../../events.ts';
import type { FormBody } from '../../http/form.ts';
import type { KeyRing } from '../../keys/key_ring.ts';
import type { RevocationLog } from '../../revocation/revocation_log.ts';
import type {
  AuthorizationCodeStore,
  ClientStore,
  RefreshTokenStore,
  SessionRecord,
  SessionStore,
} from '../../storage/ports.ts';
import type { Sessions } from '../../users/sessions.ts';
import { readIdTokenHint } from '../id_token.ts';
import type { RefreshTokens } from '../refresh_tokens.ts';
import { responseUri } from './authorization_request.ts';
import { errorPage, logoutConfirmPage, pageSchema, sendBack, sendPage, signedOutPage } from './login_page.ts';
import { queryOf } from './authorize_endpoints.ts';
import { LoginTransactions } from './login_transaction.ts';
import type { PageCookies } from './cookies.ts';

export interface EndSessionDeps {
  issuer: string;
  clock: Clock;
  keys: Pick<KeyRing, 'publishedKey'>;
  clients: Pick<ClientStore, 'getClient'>;
  sessions: Pick<Sessions, 'current'>;
  sessionStore: Pick<SessionStore, 'getSession' | 'endSession'>;
  codes: Pick<AuthorizationCodeStore, 'sessionCodeTokens'>;
  families: Pick<RefreshTokenStore, 'listSessionRefreshFamilies'>;
  refresh: Pick<RefreshTokens, 'revokeFamily'>;
  revocations: Pick<RevocationLog, 'revokeToken'>;
  events: ServerEvents;
  cookies: PageCookies;
  /** How long an access token may live: the revocation entries of a session's tokens outlast them. */
  maxAccessTokenTtl: number;
}

/**
 * OpenID Connect RP-Initiated Logout 1.0 at `/end_session` (GET and POST). With a valid
 * `id_token_hint` the sign-in session ends at once: the session, every refresh token family it
 * started and every access token its codes and families gave are revoked (on the feed, so services
 * drop them within a second); the browser then goes to a registered `post_logout_redirect_uri`
 * (with `state`) or sees a page. Without a hint, a page asks the person to confirm (a link on
 * another site cannot sign anyone out).
 */
export function registerEndSessionEndpoint(app: FastifyInstance, deps: EndSessionDeps): void {
  const html = sendPage;
  const clearSession = (reply: FastifyReply) => deps.cookies.set(reply, 'session', '', 0);

  /** Ends a session and everything it gave; false when it had ended already. */
  const end = async (request: FastifyRequest, session: SessionRecord, clientId: string | undefined) => {
    const now = epochSeconds(deps.clock);
    const families = await deps.families.listSessionRefreshFamilies(session.sid);
    const jtis = await deps.codes.sessionCodeTokens(session.sid);
    const event = deps.events.stage('user.logout', {
      ...aboutUser(`User::${JSON.stringify(session.sub)}`, session.sub, request),
      ...(clientId ? { client_id: clientId } : {}),
      detail: { sid: session.sid, families: families.length, tokens: jtis.length },
    });
    if (!(await deps.sessionStore.endSession(session.sid, now, [event]))) return;
    deps.events.committed(event);
    for (const f of families) await deps.refresh.revokeFamily(f, now, 'logout');
    for (const jti of jtis)
      await deps.revocations.revokeToken({
        jti,
        exp: now + deps.maxAccessTokenTtl,
        client_id: clientId ?? '',
        sub: session.sub,
      });
  };

  const handle = async (request: FastifyRequest, reply: FastifyReply, params: FormBody, posted: boolean) => {
    const get = (name: string): string | undefined => {
      const v = params.get(name);
      return v && v.length === 1 ? v[0] : undefined;
    };
    const hintText = get('id_token_hint');
    const hint = hintText ? readIdTokenHint(deps.keys, deps.issuer, hintText) : undefined;
    if (hintText && !hint) return html(reply, 400, errorPage('Sign-out failed', 'The sign-out request is not valid.'));
    const clientId = hint?.aud ?? get('client_id');
    if (hint && get('client_id') !== undefined && get('client_id') !== hint.aud)
      return html(reply, 400, errorPage('Sign-out failed', 'The sign-out request names two different applications.'));
    const client = clientId ? await deps.clients.getClient(clientId) : undefined;
    const postLogout = get('post_logout_redirect_uri');
    // §3: only a URI the client registered, and only when the request proves which client asks.
    if (postLogout !== undefined && (!hint || !client?.metadata.post_logout_redirect_uris?.includes(postLogout)))
      return html(
        reply,
        400,
        errorPage('Sign-out failed', 'The application did not register this address to return to.'),
      );

    const browserSession = await deps.sessions.current(deps.cookies.read(request, 'session'));
    if (!hint) {
      // A plain link or form from anywhere: the person confirms on a page of the IdP's own.
      const confirm = posted ? get('confirm') : undefined;
      const csrf = deps.cookies.read(request, 'csrf');
      if (confirm !== undefined && csrf !== undefined && confirm === csrf) {
        if (browserSession) await end(request, browserSession, undefined);
        clearSession(reply);
        return html(reply, 200, signedOutPage());
      }
      const value = LoginTransactions.csrfValue();
      deps.cookies.set(reply, 'csrf', value, 600);
      return html(reply, 200, logoutConfirmPage({ confirm: value }));
    }
    // The hinted session, and the browser's own when it is the same user's.
    const named = hint.sid ? await deps.sessionStore.getSession(hint.sid) : undefined;
    for (const s of [named, browserSession])
      if (s && s.sub === hint.sub && s.endedAt === null) await end(request, s, clientId);
    if (browserSession?.sub === hint.sub) clearSession(reply);
    if (postLogout) return sendBack(reply, responseUri(postLogout, { state: get('state') }));
    return html(reply, 200, signedOutPage());
  };

  const BACK = 'to the registered post_logout_redirect_uri, with state';
  app.get(
    '/end_session',
    { config: { credential: 'none' }, schema: pageSchema('OpenID Connect RP-Initiated Logout', false, BACK) },
    (request, reply) => handle(request, reply, queryOf(request), false),
  );
  app.post(
    '/end_session',
    {
      config: { credential: 'none' },
      schema: pageSchema('RP-Initiated Logout as a form post, or the confirmation', true, BACK),
    },
    (request, reply) => handle(request, reply, request.body as FormBody, true),
  );
}

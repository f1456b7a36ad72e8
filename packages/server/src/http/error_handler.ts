import type { FastifyError, FastifyInstance, FastifyRequest } from 'fastify';
import type { ValidationProblem } from '@latchkey/protocol';
import { AdminError, LatchkeyError, OAuthError } from '../errors.ts';
import { isAdminApi } from './route_rules.ts';

/** Fastify's schema validation problems, without echoing the offending values. */
function problemsOf(err: FastifyError): ValidationProblem[] {
  const where = (err as { validationContext?: string }).validationContext ?? 'body';
  return (err.validation ?? []).map((v) => ({
    in: where,
    path:
      v.instancePath ||
      (typeof v.params?.missingProperty === 'string' ? `/${v.params.missingProperty}` : '') ||
      (typeof v.params?.additionalProperty === 'string' ? `/${v.params.additionalProperty}` : ''),
    message: v.message ?? 'is invalid',
  }));
}

/** `policy_namespaces must ...` for a body member; `querystring/limit must ...` otherwise. */
const describe = (p: ValidationProblem): string =>
  `${p.in === 'body' ? p.path.slice(1).replace(/\//g, '.') || 'body' : `${p.in}${p.path}`} ${p.message}`;

/** A failed `X | null` or `anyOf` adds "must be null" and "must match a schema in anyOf" to the real problem. */
const NOISE = /^must (be null|match a schema in anyOf)$/;

/** A framework 4xx (bad JSON, body too large, wrong content type, schema failure) in the route's error shape. */
function frameworkError(err: FastifyError, request: FastifyRequest): AdminError | OAuthError {
  const status = err.statusCode ?? 400;
  const admin = isAdminApi(request);
  if (err.validation) {
    const all = problemsOf(err);
    const problems = all.some((p) => !NOISE.test(p.message)) ? all.filter((p) => !NOISE.test(p.message)) : all;
    const description = describe(problems[0] ?? { in: 'body', path: '', message: 'is invalid' });
    return admin
      ? new AdminError('validation_failed', description, problems)
      : new OAuthError(request.routeOptions.config.schemaError ?? 'invalid_request', description);
  }
  const description =
    status === 413
      ? 'the request body is too large'
      : status === 415
        ? 'the content type is not supported here'
        : err.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || err instanceof SyntaxError
          ? 'the request body is not valid JSON'
          : err.code === 'FST_ERR_CTP_EMPTY_JSON_BODY'
            ? 'the request body is empty'
            : 'the request is malformed';
  if (!admin) return new OAuthError('invalid_request', description, status);
  return new AdminError(
    status === 413 ? 'payload_too_large' : status === 415 ? 'unsupported_media_type' : 'validation_failed',
    description,
  );
}

/**
 * Every error leaves in one of two shapes (docs/errors.md): RFC 6749 §5.2 bodies everywhere but
 * the admin API, whose errors carry admin codes (`not_found`, `conflict`, `validation_failed`,
 * ...) in the same envelope. Framework 4xx (bad JSON, body too large, wrong content type, schema
 * failures) never echo input; storage outages are 503 `temporarily_unavailable`; anything else
 * is 500 `server_error`, logged without request data.
 */
export function installErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError | OAuthError | AdminError | LatchkeyError | Error, request, reply) => {
    const status = (err as FastifyError).statusCode;
    const known =
      err instanceof OAuthError || err instanceof AdminError
        ? err
        : typeof status === 'number' && status >= 400 && status < 500 && !(err instanceof LatchkeyError)
          ? frameworkError(err as FastifyError, request)
          : undefined;
    if (known instanceof OAuthError) {
      return reply
        .code(known.status)
        .headers({ ...known.headers, 'cache-control': 'no-store' })
        .send(known.toJSON());
    }
    if (known instanceof AdminError) {
      return reply.code(known.status).header('cache-control', 'no-store').send(known.toJSON());
    }
    if (err instanceof LatchkeyError && err.code === 'storage_unavailable') {
      request.log.error({ code: err.code }, 'storage unavailable');
      return reply
        .code(503)
        .header('retry-after', '1')
        .send({ error: 'temporarily_unavailable', error_description: 'storage is unavailable; retry later' });
    }
    request.log.error(
      { err: { type: err.name, code: (err as { code?: string }).code, message: err.message } },
      'unhandled error',
    );
    return reply.code(500).send({ error: 'server_error', error_description: 'internal error' });
  });

  app.setNotFoundHandler((request, reply) => {
    const body = request.url.startsWith('/admin/')
      ? new AdminError('not_found', 'no such endpoint').toJSON()
      : { error: 'invalid_request', error_description: 'no such endpoint' };
    reply.code(404).send(body);
  });
}

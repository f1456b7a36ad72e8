import type { FastifyError, FastifyInstance } from 'fastify';
import { LatchkeyError, OAuthError } from '../errors.ts';

/**
 * Every error leaves as an RFC 6749 §5.2 body: OAuth errors as raised; framework 4xx (bad
 * JSON, body too large, wrong content type) as `invalid_request` without echoing input;
 * storage outages as 503 `temporarily_unavailable`; anything else as 500 `server_error`,
 * logged without request data.
 */
export function installErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError | OAuthError | LatchkeyError | Error, request, reply) => {
    if (err instanceof OAuthError) {
      return reply
        .code(err.status)
        .headers({ ...err.headers, 'cache-control': 'no-store' })
        .send(err.toJSON());
    }
    if (err instanceof LatchkeyError && err.code === 'storage_unavailable') {
      request.log.error({ code: err.code }, 'storage unavailable');
      return reply
        .code(503)
        .header('retry-after', '1')
        .send({ error: 'temporarily_unavailable', error_description: 'storage is unavailable; retry later' });
    }
    const status = (err as FastifyError).statusCode;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      const code = (err as FastifyError).code;
      const description =
        status === 413
          ? 'the request body is too large'
          : status === 415
            ? 'the content type is not supported here'
            : code === 'FST_ERR_CTP_INVALID_JSON_BODY' || err instanceof SyntaxError
              ? 'the request body is not valid JSON'
              : code === 'FST_ERR_CTP_EMPTY_JSON_BODY'
                ? 'the request body is empty'
                : 'the request is malformed';
      return reply
        .code(status)
        .header('cache-control', 'no-store')
        .send({ error: 'invalid_request', error_description: description });
    }
    request.log.error(
      { err: { type: err.name, code: (err as { code?: string }).code, message: err.message } },
      'unhandled error',
    );
    return reply.code(500).send({ error: 'server_error', error_description: 'internal error' });
  });

  app.setNotFoundHandler((_request, reply) => {
    reply.code(404).send({ error: 'invalid_request', error_description: 'no such endpoint' });
  });
}

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { Validator } from '@seriousme/openapi-schema-validator';
import { startTestIdp, type TestIdp } from '@latchkey/testkit';
import { openApiText } from '../../../../scripts/docs.ts';

describe('OpenAPI 3.1 document', () => {
  let t: TestIdp;
  let served: Record<string, any>;
  before(async () => {
    t = await startTestIdp();
    const res = await t.fetch(`${t.issuer}/openapi.json`);
    assert.equal(res.status, 200);
    served = (await res.json()) as Record<string, any>;
  });
  after(() => t.close());

  test('GET /openapi.json is valid OpenAPI 3.1 by an independent validator', async () => {
    const validator = new Validator();
    const result = await validator.validate(structuredClone(served));
    assert.equal(validator.version, '3.1');
    assert.ok(result.valid, JSON.stringify(result.errors, null, 2));
  });

  test('docs/openapi.json is what the IdP serves (npm run docs)', () => {
    const committed = readFileSync(new URL('../../../../docs/openapi.json', import.meta.url), 'utf8');
    // Compared as text, reported briefly: the document is large.
    const expected = openApiText(served);
    const at = [...expected].findIndex((c, i) => committed[i] !== c);
    assert.ok(
      committed === expected,
      `docs/openapi.json differs from the served document at character ${at}: ${JSON.stringify(expected.slice(Math.max(0, at - 80), at + 80))} — run npm run docs`,
    );
  });

  test('it documents every route but itself, with its security and error responses', () => {
    const table = (t.idp.app as unknown as { routeTable: () => { method: string; url: string; credential: string }[] })
      .routeTable()
      .filter((r) => r.method !== 'HEAD' && r.url !== '/openapi.json');
    for (const r of table) {
      const path = r.url.replace(/:([a-zA-Z]+)/g, '{$1}');
      const op = served.paths[path]?.[r.method.toLowerCase()];
      assert.ok(op, `${r.method} ${path} is documented`);
      assert.ok(
        // A redirect's success is the redirect (GET /console → /console/).
        Object.keys(op.responses).some((s) => s.startsWith('2') || s === '308'),
        `${r.method} ${path} has a success response`,
      );
      if (r.credential === 'none') assert.equal(op.security, undefined, path);
      else assert.ok(op.security?.length > 0, `${r.method} ${path} names its credential`);
    }
    assert.deepEqual(
      served.paths['/token'].post.requestBody.content['application/x-www-form-urlencoded'] !== undefined,
      true,
    );
    assert.equal(
      served.paths['/admin/clients/{clientId}'].get.responses['404'].content['application/json'].schema.$ref,
      '#/components/schemas/AdminError',
    );
  });
});

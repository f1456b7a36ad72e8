import type { FastifyRequest, FastifySchemaCompiler } from 'fastify';
import Type, { type TSchema } from 'typebox';
import { Compile } from 'typebox/compile';
import { invalidRequest } from '../errors.ts';

/** A parsed application/x-www-form-urlencoded body: every name with all its values, in order. */
export type FormBody = Map<string, string[]>;

export const FORM_CONTENT_TYPE = 'application/x-www-form-urlencoded';

/** Parses a form body with the platform's URLSearchParams. Empty values count as omitted (RFC 6749 §3.1). */
export function parseForm(text: string): FormBody {
  const form: FormBody = new Map();
  for (const [name, value] of new URLSearchParams(text)) {
    if (value === '') continue;
    const list = form.get(name);
    if (list) list.push(value);
    else form.set(name, [value]);
  }
  return form;
}

/**
 * The form of a request whose body must be form-encoded, with every parameter single-valued
 * except those in `multi` (RFC 6749 §3.1/§3.2: parameters MUST NOT be included more than once;
 * RFC 8707 §2 allows several `resource`).
 */
export function readForm(request: FastifyRequest, multi: readonly string[] = []): FormBody {
  if (!(request.body instanceof Map)) {
    throw invalidRequest(`the request body must be ${FORM_CONTENT_TYPE}`);
  }
  const form = request.body as FormBody;
  for (const [name, values] of form) {
    if (values.length > 1 && !multi.includes(name))
      throw invalidRequest(`parameter ${JSON.stringify(name.slice(0, 64))} is repeated`);
  }
  return form;
}

/** The single value of a parameter, if present. */
export const param = (form: FormBody, name: string): string | undefined => form.get(name)?.[0];

/**
 * Fastify validator for a form route's body schema: the form is checked as an object whose
 * single-valued parameters are strings and repeated ones arrays, so that a schema saying
 * `string` refuses a repeated parameter (RFC 6749 §3.1) and one saying `string | string[]`
 * allows it (RFC 8707 `resource`). The handler still receives the Map.
 */
export const formValidatorCompiler: FastifySchemaCompiler<TSchema> = ({ schema, httpPart }) => {
  if (httpPart !== 'body') throw new Error(`form routes validate their body only, not ${httpPart}`);
  const check = Compile(schema);
  return (data: unknown) => {
    const view =
      data instanceof Map
        ? Object.fromEntries([...(data as FormBody)].map(([k, v]) => [k, v.length === 1 ? v[0] : v]))
        : data;
    if (check.Check(view)) return { value: data };
    const first = [...check.Errors(view)][0];
    return {
      error: [{ instancePath: first?.instancePath ?? '', message: first?.message ?? 'is invalid', params: {} }],
    } as unknown as { error: Error };
  };
};

/** One form parameter, given once (its size is bounded by LATCHKEY_FORM_BODY_LIMIT). */
export const FormParam = (description: string) => Type.Optional(Type.String({ description }));

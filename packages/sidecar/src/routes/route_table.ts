import FindMyWay, { type HTTPMethod } from 'find-my-way';
import type { AttributeSpec, RouteSpec, ValueSource } from '../config/sidecar_config_schema.ts';
import { SidecarError } from '../errors.ts';
import { headerValue, type RequestFacts } from './request_facts.ts';

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'CONNECT', 'TRACE'] as const;

/** A route of the table, compiled. */
export interface Route {
  /** Its position in the configuration (`routes/3`), for metrics and audit. */
  readonly name: string;
  readonly auth: NonNullable<RouteSpec['auth']>;
  readonly action: string | undefined;
  readonly scope: string | undefined;
  readonly spec: RouteSpec;
}

/** What a matched route makes of a request: the Cedar resource and context. */
export interface Resolved {
  resource: { type: string; id: string; attrs: Record<string, unknown> } | undefined;
  context: Record<string, unknown>;
}

/** A value could not be read or converted (a required part of the request is missing or malformed). */
export class UnresolvableRequest extends Error {}

/**
 * Method + path pattern → route, on find-my-way (Fastify's router: `:param`, `*`, static paths
 * before parametric ones). Routes are matched in specificity order, not file order; two routes
 * for the same method and pattern are a configuration error.
 */
export class RouteTable {
  private readonly router = FindMyWay({ caseSensitive: true, ignoreTrailingSlash: false });
  readonly routes: Route[] = [];

  constructor(specs: readonly RouteSpec[]) {
    specs.forEach((spec, i) => {
      const auth = spec.auth ?? 'token';
      const name = `routes/${i}`;
      if (auth !== 'none' && spec.action === undefined && spec.resource !== undefined)
        throw new SidecarError('config_invalid', `${name}: a resource needs an action`);
      if (spec.action !== undefined && spec.resource === undefined)
        throw new SidecarError('config_invalid', `${name}: an action needs a resource`);
      if (auth === 'none' && spec.action !== undefined)
        throw new SidecarError('config_invalid', `${name}: auth none makes no decision; remove the action`);
      const route: Route = { name, auth, action: spec.action, scope: spec.scope, spec };
      const methods = (Array.isArray(spec.methods) ? spec.methods : [spec.methods]).map((m) => m.toUpperCase());
      const list = methods.includes('*') ? [...METHODS] : methods;
      for (const m of list) {
        if (!(METHODS as readonly string[]).includes(m))
          throw new SidecarError('config_invalid', `${name}: unknown method ${JSON.stringify(m)}`);
        try {
          this.router.on(m as HTTPMethod, spec.path, () => undefined, route);
        } catch (err) {
          throw new SidecarError('config_invalid', `${name}: ${(err as Error).message}`);
        }
      }
      this.routes.push(route);
    });
  }

  /** The route for a method and (percent-encoded) path, with its decoded parameters. */
  match(method: string, path: string): { route: Route; params: Record<string, string | undefined> } | undefined {
    const found = this.router.find(method.toUpperCase() as HTTPMethod, path);
    if (!found) return undefined;
    return { route: found.store as Route, params: found.params };
  }
}

function read(source: ValueSource, facts: RequestFacts, params: Record<string, string | undefined>): unknown {
  if ('param' in source) return params[source.param];
  if ('query' in source) {
    const all = facts.query.getAll(source.query);
    return all.length === 1 ? all[0] : undefined; // repeated: ambiguous, treated as absent
  }
  if ('header' in source) return headerValue(facts.headers, source.header);
  if ('value' in source) return source.value;
  if ('extension' in source) return facts.extensions?.[source.extension];
  switch (source.request) {
    case 'source_ip':
      return facts.sourceIp;
    case 'method':
      return facts.method.toUpperCase();
    case 'path':
      return facts.path;
    case 'peer':
      return facts.peer ?? '';
    case 'time':
      return Math.floor(facts.now / 1000);
    case 'hour':
      return new Date(facts.now).getUTCHours();
  }
}

function convert(name: string, spec: AttributeSpec, facts: RequestFacts, params: Record<string, string | undefined>) {
  const source = 'from' in spec ? spec.from : spec;
  const raw = read(source, facts, params);
  if (raw === undefined) return undefined;
  if (!('from' in spec)) return raw;
  switch (spec.type) {
    case 'string':
      return String(raw);
    case 'long': {
      if (typeof raw === 'number' && Number.isSafeInteger(raw)) return raw;
      if (typeof raw === 'string' && /^-?\d{1,15}$/.test(raw)) return Number(raw);
      throw new UnresolvableRequest(`${name} is not a whole number`);
    }
    case 'bool':
      if (raw === true || raw === 'true') return true;
      if (raw === false || raw === 'false') return false;
      throw new UnresolvableRequest(`${name} is not true or false`);
    case 'entity':
      return { __entity: { type: spec.entity_type ?? 'Entity', id: String(raw) } };
  }
}

function values(
  specs: Record<string, AttributeSpec> | undefined,
  facts: RequestFacts,
  params: Record<string, string | undefined>,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(specs ?? {})) {
    const v = convert(name, spec, facts, params);
    if (v !== undefined) out[name] = v;
  }
  return out;
}

/** The Cedar resource and context of a request on a route (throws UnresolvableRequest). */
export function resolve(route: Route, facts: RequestFacts, params: Record<string, string | undefined>): Resolved {
  const r = route.spec.resource;
  let resource: Resolved['resource'];
  if (r) {
    const id = read(r.id, facts, params);
    if (id === undefined || id === '') throw new UnresolvableRequest('the resource id is missing');
    resource = { type: r.type, id: String(id), attrs: values(r.attrs, facts, params) };
  }
  return { resource, context: values(route.spec.context, facts, params) };
}

import Type, { type Static, type TSchema } from 'typebox';

/**
 * The sidecar's configuration file, declared once as a JSON Schema (TypeBox): the loader checks
 * files against it, `sidecar.schema.json` is generated from it for editors, and docs/sidecar.md
 * describes it. Durations in seconds, sizes in bytes. Keys are snake_case, as in YAML files.
 */

/** The schema with a description (TypeBox keeps its kind in non-enumerable members, which a spread would drop). */
const doc = <T extends TSchema>(schema: T, description: string): T =>
  Object.defineProperties(
    {},
    {
      ...Object.getOwnPropertyDescriptors(schema),
      description: { value: description, enumerable: true, writable: true, configurable: true },
    },
  ) as T;
const port = Type.Integer({ minimum: 0, maximum: 65535 });

const Listen = Type.Object(
  {
    host: Type.String({ default: '127.0.0.1', minLength: 1 }),
    port: doc(port, 'TCP port; 0 picks a free one'),
    tls: Type.Optional(
      Type.Object(
        {
          cert_file: Type.String({ minLength: 1 }),
          key_file: Type.String({ minLength: 1 }),
          client_ca_file: Type.Optional(
            doc(Type.String({ minLength: 1 }), 'ask peers for a certificate signed by this CA (mTLS)'),
          ),
        },
        { additionalProperties: false },
      ),
    ),
    workload_tls: Type.Optional(
      doc(
        Type.Boolean(),
        'terminate TLS with the workload identity (an X.509-SVID from the IdP, renewed by itself) and ask peers for theirs',
      ),
    ),
  },
  { additionalProperties: false },
);

/** Where a value of the request comes from. Exactly one member. */
export const ValueSource = Type.Union([
  Type.Object({ param: Type.String({ minLength: 1 }) }, { additionalProperties: false }),
  Type.Object({ query: Type.String({ minLength: 1 }) }, { additionalProperties: false }),
  Type.Object({ header: Type.String({ minLength: 1 }) }, { additionalProperties: false }),
  Type.Object(
    { extension: doc(Type.String({ minLength: 1 }), 'an Envoy ext_authz context extension (set per route in Envoy)') },
    { additionalProperties: false },
  ),
  Type.Object(
    {
      request: Type.Union([
        Type.Literal('source_ip'),
        Type.Literal('method'),
        Type.Literal('path'),
        Type.Literal('peer'),
        Type.Literal('time'),
        Type.Literal('hour'),
      ]),
    },
    { additionalProperties: false },
  ),
  Type.Object({ value: Type.Union([Type.String(), Type.Number(), Type.Boolean()]) }, { additionalProperties: false }),
]);
export type ValueSource = Static<typeof ValueSource>;

/** A value of an attribute or of the context: its source, and the Cedar type it is given. */
const Attribute = Type.Union([
  ValueSource,
  Type.Object(
    {
      from: ValueSource,
      type: Type.Union([Type.Literal('string'), Type.Literal('long'), Type.Literal('bool'), Type.Literal('entity')]),
      entity_type: Type.Optional(doc(Type.String({ minLength: 1 }), 'for type entity: the entity type')),
    },
    { additionalProperties: false },
  ),
]);
export type AttributeSpec = Static<typeof Attribute>;

const Methods = Type.Union([Type.String({ minLength: 1 }), Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })]);

export const RouteSpec = Type.Object(
  {
    methods: doc(Methods, 'HTTP methods (GET, POST, ... or *)'),
    path: doc(Type.String({ pattern: '^/' }), 'a path pattern: /orders/:id, /files/*'),
    auth: Type.Optional(
      doc(
        Type.Union([Type.Literal('token'), Type.Literal('mtls'), Type.Literal('token_or_mtls'), Type.Literal('none')]),
        'who the caller is: a bearer token (default), the mTLS peer, either, or nobody (public: no decision)',
      ),
    ),
    action: Type.Optional(doc(Type.String({ minLength: 1 }), 'the Cedar action, e.g. Orders::Action::"read"')),
    resource: Type.Optional(
      Type.Object(
        {
          type: Type.String({ minLength: 1 }),
          id: ValueSource,
          attrs: Type.Optional(Type.Record(Type.String({ minLength: 1 }), Attribute)),
        },
        { additionalProperties: false },
      ),
    ),
    context: Type.Optional(Type.Record(Type.String({ minLength: 1 }), Attribute)),
    scope: Type.Optional(doc(Type.String({ minLength: 1 }), 'scopes the token must carry (space-separated)')),
    transaction_token: Type.Optional(
      doc(
        Type.Union([Type.Literal('mint'), Type.Literal('require'), Type.Literal('optional')]),
        "Transaction Tokens (Txn-Token header): mint one for each allowed request at the edge (from the caller's token; any Txn-Token from outside is replaced), or require / verify one on an inner hop (forwarded unchanged)",
      ),
    ),
    txn_scope: Type.Optional(
      doc(Type.String({ minLength: 1 }), "mint: the Transaction Token's scope (default: the caller token's)"),
    ),
  },
  { additionalProperties: false },
);
export type RouteSpec = Static<typeof RouteSpec>;

export const SidecarConfigSchema = Type.Object(
  {
    idp: Type.Object(
      {
        issuer: doc(Type.String({ pattern: '^https?://' }), 'the IdP issuer identifier'),
        client_id: doc(Type.String({ minLength: 1 }), 'the protected service’s client id at the IdP'),
        client_secret: Type.Optional(
          doc(Type.String({ minLength: 1 }), 'its secret (better: LATCHKEY_SIDECAR_CLIENT_SECRET)'),
        ),
        ca_file: Type.Optional(doc(Type.String({ minLength: 1 }), 'PEM file of the IdP’s CA, beside the system roots')),
      },
      { additionalProperties: false },
    ),
    audience: doc(Type.String({ minLength: 1 }), 'the audience tokens must carry (the protected service)'),
    max_staleness: Type.Integer({
      minimum: 1,
      default: 3600,
      description: 'how long to keep deciding from cache while the IdP is unreachable',
    }),
    audit: Type.Object(
      {
        allow_rate: Type.Integer({
          minimum: 0,
          default: 100,
          description:
            'allowed decisions sent as their own audit event per second; past it they are counted per interval (denies and @sensitive decisions always go one by one)',
        }),
        aggregate_interval: Type.Integer({
          minimum: 1,
          maximum: 3600,
          default: 10,
          description: 'seconds each count covers',
        }),
        max_queue: Type.Integer({
          minimum: 100,
          maximum: 1_000_000,
          default: 10_000,
          description: 'events held while the IdP is slow or down; past it decisions are counted, never dropped',
        }),
      },
      { additionalProperties: false, default: {} },
    ),
    status_list: Type.Union([Type.Literal('fallback'), Type.Literal('always'), Type.Literal('off')], {
      default: 'fallback',
      description:
        'the IdP’s Token Status Lists as a second source of revocations: while the feed is down (fallback), for every token (always), or never (off)',
    }),
    routes: Type.Array(RouteSpec, { default: [] }),
    unmatched: Type.Union([Type.Literal('deny'), Type.Literal('authenticated')], {
      default: 'deny',
      description: 'requests no route matches: denied (403), or allowed with any valid token',
    }),
    delegation_context: Type.Boolean({
      default: false,
      description:
        'put the delegation chain (actors, caller, depth) and the Transaction Token (txn) into every decision’s Cedar context; declare them in the schema',
    }),
    pass_authorization: Type.Boolean({
      default: false,
      description: 'forward the caller’s Authorization header upstream (off: only identity headers)',
    }),
    listen: Type.Optional(
      doc(Listen, 'the sidecar’s own API: forward auth, AuthZEN, Envoy ext_authz over HTTP, health, metrics'),
    ),
    proxy: Type.Optional(
      Type.Object(
        {
          listen: Listen,
          upstream: doc(Type.String({ pattern: '^https?://' }), 'the protected service'),
          body_limit: Type.Integer({ minimum: 0, default: 10 * 1024 * 1024, description: 'largest request body' }),
          timeout: Type.Integer({ minimum: 1, default: 30, description: 'seconds to wait for the upstream' }),
          websocket: Type.Boolean({ default: true, description: 'proxy WebSocket upgrades (after authorization)' }),
        },
        { additionalProperties: false },
      ),
    ),
    ext_authz: Type.Object(
      {
        grpc: Type.Optional(
          doc(
            Type.Object({ listen: Listen }, { additionalProperties: false }),
            'Envoy / Istio external authorization over gRPC (envoy.service.auth.v3.Authorization/Check)',
          ),
        ),
        http_path_prefix: Type.String({
          pattern: '^/[^?#]*[^/?#]$',
          default: '/ext_authz',
          description: 'Envoy’s HTTP ext_authz: the path_prefix its http_service adds, on the sidecar’s own listener',
        }),
      },
      { additionalProperties: false, default: {} },
    ),
    forward_auth: Type.Object(
      { path: Type.String({ pattern: '^/', default: '/auth' }) },
      { additionalProperties: false, default: {} },
    ),
    authzen: Type.Object(
      {
        enabled: Type.Boolean({ default: true }),
        subject_types: Type.Optional(
          doc(Type.Record(Type.String(), Type.String()), 'AuthZEN subject type → Cedar entity type (default: as is)'),
        ),
      },
      { additionalProperties: false, default: {} },
    ),
    log_level: Type.Union(
      ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
      { default: 'info' },
    ),
  },
  { additionalProperties: false },
);
export type SidecarConfig = Static<typeof SidecarConfigSchema>;

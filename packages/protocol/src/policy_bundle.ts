/** A Cedar entity in Cedar's JSON entity format. */
export interface PolicyEntity {
  uid: { type: string; id: string };
  attrs: Record<string, unknown>;
  parents: { type: string; id: string }[];
}

/**
 * One published version of the authorization bundle: the combined Cedar schema (one text per
 * fragment, by name), the policies by id, and the entity data (roles, groups, memberships,
 * principal attributes). What `GET /feeds/policy` serves and the SDK's authorizer evaluates.
 */
export interface PolicyBundle {
  version: number;
  /** SHA-256 (base64url) over schema, policies and entities: the ETag. */
  digest: string;
  /** RFC 3339. */
  publishedAt: string;
  schema: Record<string, string>;
  policies: Record<string, string>;
  entities: PolicyEntity[];
}

/** What a publish carries (the IdP assigns version, digest and time). */
export type PolicyBundleContent = Pick<PolicyBundle, 'schema' | 'policies' | 'entities'>;

/**
 * The token of an `Authorization: Bearer <token>` header, or undefined. The one reading of that
 * header, for the HTTP guards and the WebSocket upgrade alike. Everything after the scheme is the
 * token: a header with junk after the token is a bad token (refused), not a missing one.
 */
export function bearerToken(authorization: string | undefined): string | undefined {
  return /^Bearer +(.+)$/i.exec(authorization ?? '')?.[1];
}

import type { IncomingMessage } from 'node:http';
import type { NextFunction, Request, Response } from 'express';
import helmet from 'helmet';

/** A host as a CSP source may name it (name, IPv4 or [IPv6], optional port), and nothing more. */
const HOST_SOURCE = /^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

/**
 * This origin, plus `ws:` and `wss:` to the host the page was loaded from (`X-Forwarded-Host`
 * behind a trusted proxy) for `/ws/signals`: CSP Level 3 lets `'self'` cover them, Level 2
 * browsers match the page's own scheme only. A Host that is not a plain host (one crafted to
 * smuggle in directives) adds nothing.
 */
function connectSources(request: IncomingMessage): string {
  const host = (request as Request).host;
  return host && HOST_SOURCE.test(host) ? `'self' ws://${host} wss://${host}` : "'self'";
}

/**
 * Helmet's headers on every HTTP response (`nosniff`, HSTS, `X-Frame-Options`, no `X-Powered-By`,
 * ...), with a Content-Security-Policy for what this origin serves: the API, Swagger UI at /docs,
 * and later a web app built with Vite at /. Scripts, styles, images and connections come from
 * this origin only; no inline or eval'd script. Inline styles are allowed: the Swagger UI page
 * has `<style>` blocks and `style` attributes (an injected style can restyle a page, not run
 * script). Not sent: `upgrade-insecure-requests` (a browser on http://host:3000/docs would ask
 * for https:// assets nobody serves; TLS is the proxy's job).
 */
export function securityHeaders(): ReturnType<typeof helmet> {
  return helmet({
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        'default-src': ["'self'"],
        'base-uri': ["'self'"],
        'connect-src': [connectSources],
        'font-src': ["'self'", 'data:'],
        'form-action': ["'self'"],
        'frame-ancestors': ["'self'"],
        'img-src': ["'self'", 'data:'],
        'object-src': ["'none'"],
        'script-src': ["'self'"],
        'script-src-attr': ["'none'"],
        'style-src': ["'self'", "'unsafe-inline'"],
      },
    },
  });
}

/**
 * `Cache-Control: no-store` on every answer unless a route says otherwise (the page's HTML and its
 * hashed assets do): API answers are per user (a token, a tier's signals, the cluster's
 * statistics) and live. A shared cache must not hand them to someone else, and a browser's fetch
 * cache must not hand a poller yesterday's page. Deny by default, because Express routes paths
 * case-insensitively (`/API/...` reaches the API) and accepts absolute-form targets: a prefix
 * test on the raw URL would miss both.
 */
export function noStoreByDefault(request: Request, response: Response, next: NextFunction): void {
  // The static server sets its own header only where none is set yet; the page's assets keep theirs.
  if (!request.path.startsWith('/assets/')) response.setHeader('Cache-Control', 'no-store');
  next();
}

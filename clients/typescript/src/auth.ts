/**
 * API tokens. Once any user of the server has a token, every call needs
 * `authorization: Bearer <token>`; before that (single-user mode, loopback
 * only) calls without one are made as the built-in user "local".
 *
 * Two ways to send it, for any transport (gRPC from @connectrpc/connect-node,
 * gRPC-Web from @connectrpc/connect-web, ...), on every call, unary and
 * streaming alike:
 *
 * ```ts
 * // on the transport:
 * const transport = createGrpcTransport({ baseUrl, interceptors: [tokenInterceptor(token)] });
 * // or around a transport made elsewhere (createClients(transport, { token }) does this):
 * const clients = createClients(withToken(transport, token));
 * ```
 *
 * A call that sets its own `authorization` header keeps it. The token is kept
 * in a closure only: nothing here logs it or puts it in an error message.
 *
 * @module
 */

import type { Interceptor, Transport } from "@connectrpc/connect";

/** The metadata key the server reads the token from. */
export const AUTHORIZATION_HEADER = "authorization";

/** `Bearer <token>`, checked to be a valid header value (without showing it). */
function bearer(token: string): string {
  const value = token.trim();
  // Header values are visible ASCII; base64url tokens always are.
  if (!/^[\x21-\x7e]+$/.test(value)) {
    throw new TypeError("the token has characters that a header cannot carry");
  }
  return `Bearer ${value}`;
}

/** Whether `token` is worth sending: undefined, empty and blank tokens are not. */
function present(token: string | undefined): token is string {
  return token !== undefined && token.trim() !== "";
}

/**
 * An interceptor that adds `authorization: Bearer <token>` to every call that
 * does not set its own, for a transport's `interceptors` option. An undefined
 * or blank token adds nothing.
 */
export function tokenInterceptor(token: string | undefined): Interceptor {
  if (!present(token)) return (next) => next;
  const value = bearer(token);
  return (next) => (req) => {
    if (!req.header.has(AUTHORIZATION_HEADER)) req.header.set(AUTHORIZATION_HEADER, value);
    return next(req);
  };
}

/**
 * `transport`, with `authorization: Bearer <token>` added to every call
 * (unary and streaming) that does not set its own. Returns `transport` itself
 * when `token` is undefined or blank.
 */
export function withToken(transport: Transport, token: string | undefined): Transport {
  if (!present(token)) return transport;
  const value = bearer(token);
  const headers = (init: HeadersInit | undefined): Headers => {
    const header = new Headers(init);
    if (!header.has(AUTHORIZATION_HEADER)) header.set(AUTHORIZATION_HEADER, value);
    return header;
  };
  return {
    unary: (method, signal, timeoutMs, header, input, contextValues) =>
      transport.unary(method, signal, timeoutMs, headers(header), input, contextValues),
    stream: (method, signal, timeoutMs, header, input, contextValues) =>
      transport.stream(method, signal, timeoutMs, headers(header), input, contextValues),
  };
}

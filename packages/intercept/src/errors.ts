/** Typed errors of @moat/intercept: callers branch on `name` and the fields, never on message text. */

/** getsockopt(SO_ORIGINAL_DST) failed for a reason other than "this connection was not redirected". */
export class OriginalDestinationError extends Error {
  override readonly name = 'OriginalDestinationError';
  /** The errno symbol (e.g. 'ENOPROTOOPT'), or 'ENOFD' when the socket has no file descriptor. */
  readonly code: string;
  /** The numeric errno (0 for 'ENOFD'). */
  readonly errno: number;

  constructor(message: string, code: string, errno: number, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
    this.errno = errno;
  }
}

/** Why reading a ClientHello from a socket gave up. */
export type ClientHelloFailure =
  /** No complete ClientHello within `timeoutMs`. */
  | 'timeout'
  /** The peer ended or closed the connection before the ClientHello was complete. */
  | 'closed'
  /** The socket reported an error (see `cause`). */
  | 'socket-error'
  /** The first bytes are not a TLS handshake record (e.g. plain HTTP on port 443). */
  | 'not-tls'
  /** A TLS record or ClientHello that breaks the protocol or our size limits. */
  | 'malformed'
  /** More than `maxBytes` arrived without completing the ClientHello. */
  | 'too-large';

export class ClientHelloError extends Error {
  override readonly name = 'ClientHelloError';
  readonly reason: ClientHelloFailure;
  /** Everything read from the socket before giving up (e.g. to answer plain HTTP on the TLS port). */
  readonly bytes: Buffer;

  constructor(message: string, reason: ClientHelloFailure, bytes: Buffer, options?: ErrorOptions) {
    super(message, options);
    this.reason = reason;
    this.bytes = bytes;
  }
}

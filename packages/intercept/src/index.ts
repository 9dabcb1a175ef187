/**
 * @moat/intercept — what the web proxy needs to handle connections that
 * nftables redirected to it (transparent mode): where they were going, and
 * which host a TLS client asked for, read from its ClientHello.
 *
 * @packageDocumentation
 */

/** Bounds-checked ClientHello parser: `parseClientHello(bytes)` never throws on any input. */
export {
  type ClientHello,
  type ClientHelloParse,
  MAX_CLIENT_HELLO_LENGTH,
  MAX_RECORD_LENGTH,
  MAX_RECORDS,
  parseClientHello,
  type TlsVersionName,
} from './client-hello.js';
/** Typed errors: branch on `code` (OriginalDestinationError) or `reason` (ClientHelloError). */
export { ClientHelloError, type ClientHelloFailure, OriginalDestinationError } from './errors.js';
/** `originalDestination(socket)`: the pre-redirect destination from conntrack (SO_ORIGINAL_DST), via koffi. */
export { type OriginalDestination, originalDestination } from './original-destination.js';
/** `readClientHello(socket, options)`: reads until a ClientHello is complete and hands back every byte read. */
export { type ClientHelloRead, type ReadClientHelloOptions, readClientHello } from './read-client-hello.js';

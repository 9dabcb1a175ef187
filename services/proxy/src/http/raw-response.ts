import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';

/**
 * Writes a complete HTTP/1.1 response straight onto a socket and closes it: for answers given
 * outside Node's request/response objects (parse errors, refused CONNECT requests).
 */
export function writeRawResponse(
  socket: Socket,
  status: number,
  headers: Record<string, string>,
  body: string,
): void {
  if (socket.destroyed || !socket.writable) return;
  const lines = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}`,
    ...Object.entries({
      ...headers,
      'content-length': String(Buffer.byteLength(body)),
      connection: 'close',
    }).map(([name, value]) => `${name}: ${value}`),
  ];
  socket.end(`${lines.join('\r\n')}\r\n\r\n${body}`);
}

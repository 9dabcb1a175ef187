import type { Socket } from 'node:net';
import { endianness } from 'node:os';
import { OriginalDestinationError } from './errors.js';
import { formatIPv4, formatIPv6, unmapIPv4 } from './ip-address.js';
import { loadLibc } from './libc.js';

/** Where a connection was headed before nftables `redirect` (or `dnat`) sent it to us. */
export interface OriginalDestination {
  address: string;
  port: number;
  family: 4 | 6;
}

// <linux/in.h>, <linux/in6.h>, <linux/netfilter_ipv4.h>, <linux/netfilter_ipv6/ip6_tables.h>
const SOL_IP = 0;
const SOL_IPV6 = 41;
const SO_ORIGINAL_DST = 80;
const IP6T_SO_ORIGINAL_DST = 80;
const AF_INET = 2;
const AF_INET6 = 10;
const SIZEOF_SOCKADDR_IN = 16;
const SIZEOF_SOCKADDR_IN6 = 28;

// One pair of buffers for every call: the call is synchronous and JS single-threaded, so they are never shared.
const optval = Buffer.alloc(SIZEOF_SOCKADDR_IN6);
const optlen = Buffer.alloc(4);
const littleEndian = endianness() === 'LE';

/**
 * Asks conntrack for the original destination of an accepted TCP connection.
 * IPv4 (and IPv4 on a dual-stack `::` listener) uses SOL_IP/SO_ORIGINAL_DST, IPv6 SOL_IPV6/IP6T_SO_ORIGINAL_DST.
 * Undefined when the connection was not redirected: conntrack knows it not (ENOENT), or its original
 * destination is this very socket's local address and port (a client that connected to us directly).
 */
export function originalDestination(socket: Socket): OriginalDestination | undefined {
  const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  const local = socket.localAddress;
  if (typeof fd !== 'number' || fd < 0 || local === undefined) {
    throw new OriginalDestinationError(
      'socket has no file descriptor (destroyed, not yet connected, or not a plain TCP socket)',
      'ENOFD',
      0,
    );
  }
  const localAddress = unmapIPv4(local);
  const v6 = localAddress.includes(':');
  const { getsockopt, errno, errnoName } = loadLibc();

  writeHostU32(optlen, v6 ? SIZEOF_SOCKADDR_IN6 : SIZEOF_SOCKADDR_IN);
  if (
    getsockopt(fd, v6 ? SOL_IPV6 : SOL_IP, v6 ? IP6T_SO_ORIGINAL_DST : SO_ORIGINAL_DST, optval, optlen) !== 0
  ) {
    const code = errno();
    const name = errnoName(code);
    if (name === 'ENOENT') return undefined;
    throw new OriginalDestinationError(
      `getsockopt(${v6 ? 'SOL_IPV6, IP6T_SO_ORIGINAL_DST' : 'SOL_IP, SO_ORIGINAL_DST'}) failed: ${name}`,
      name,
      code,
    );
  }

  const family = littleEndian ? optval.readUInt16LE(0) : optval.readUInt16BE(0);
  if (family !== (v6 ? AF_INET6 : AF_INET)) {
    throw new OriginalDestinationError(
      `unexpected address family ${family} from getsockopt`,
      'EAFNOSUPPORT',
      0,
    );
  }
  const port = optval.readUInt16BE(2);
  const address = v6 ? formatIPv6(optval, 8) : formatIPv4(optval, 4);
  if (port === socket.localPort && address === localAddress) return undefined;
  return { address, port, family: v6 ? 6 : 4 };
}

function writeHostU32(buffer: Buffer, value: number): void {
  if (littleEndian) buffer.writeUInt32LE(value, 0);
  else buffer.writeUInt32BE(value, 0);
}

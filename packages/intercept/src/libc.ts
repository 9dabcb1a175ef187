import { createRequire } from 'node:module';
import type Koffi from 'koffi';

/**
 * libc's getsockopt through koffi, bound on first use: processes that never
 * intercept never load the native addon, and the binding is made once.
 */

type GetSockOpt = (fd: number, level: number, optname: number, optval: Buffer, optlen: Buffer) => number;

interface Libc {
  getsockopt: GetSockOpt;
  errno: () => number;
  errnoName: (errno: number) => string;
}

let libc: Libc | undefined;

export function loadLibc(): Libc {
  if (libc) return libc;
  // createRequire keeps the load lazy and synchronous (a dynamic import would make every caller async).
  const koffi = createRequire(import.meta.url)('koffi') as typeof Koffi;
  const lib = koffi.load('libc.so.6');
  // Buffers passed as `void *` hand koffi their memory directly: no marshalling on the hot path.
  const getsockopt = lib.func(
    'int getsockopt(int fd, int level, int optname, void *optval, void *optlen)',
  ) as GetSockOpt;
  const names = new Map(Object.entries(koffi.os.errno).map(([name, value]) => [value, name]));
  libc = {
    getsockopt,
    errno: () => koffi.errno(),
    errnoName: (errno) => names.get(errno) ?? `errno ${errno}`,
  };
  return libc;
}

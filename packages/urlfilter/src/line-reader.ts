/**
 * Reads a list file line by line in fixed chunks, so a 100 MB list never sits in memory whole.
 * Synchronous on purpose: it runs inside the build worker, off the proxy's event loop.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

const CHUNK = 1 << 20;
const NEWLINE = 10;

/** The file's identity when it was read, for change detection. */
export interface ReadFileInfo {
  size: number;
  mtimeMs: number;
}

/**
 * Calls onLine(buffer, start, end) for each line of the file (the '\n' excluded; a '\r' stays for
 * the caller to trim). The buffer is reused between calls.
 */
export function readLines(
  path: string,
  onLine: (buffer: Uint8Array, start: number, end: number) => void,
): ReadFileInfo {
  const fd = openSync(path, 'r');
  try {
    const stat = fstatSync(fd);
    let buffer = Buffer.allocUnsafeSlow(CHUNK);
    let filled = 0;
    let first = true;
    for (;;) {
      if (filled === buffer.length) {
        // one line longer than the buffer: make room rather than cut it
        const bigger = Buffer.allocUnsafeSlow(buffer.length * 2);
        buffer.copy(bigger, 0, 0, filled);
        buffer = bigger;
      }
      const read = readSync(fd, buffer, filled, buffer.length - filled, null);
      const end = filled + read;
      let lineStart = 0;
      if (first && end >= 3 && buffer[0] === 0xef && buffer[1] === 0xbb && buffer[2] === 0xbf) lineStart = 3;
      first = false;
      if (read === 0) {
        if (end > lineStart) onLine(buffer, lineStart, end);
        break;
      }
      for (;;) {
        const newline = buffer.indexOf(NEWLINE, lineStart);
        if (newline === -1 || newline >= end) break;
        onLine(buffer, lineStart, newline);
        lineStart = newline + 1;
      }
      buffer.copy(buffer, 0, lineStart, end);
      filled = end - lineStart;
    }
    return { size: stat.size, mtimeMs: stat.mtimeMs };
  } finally {
    closeSync(fd);
  }
}

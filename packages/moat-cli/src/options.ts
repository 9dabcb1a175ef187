import { InvalidArgumentError } from 'commander';

/** Commander argument parsers: reject bad values with a message naming what is expected. */

export function parsePort(value: string): number {
  const port = Number(value);
  if (!/^\d+$/.test(value) || port < 1024 || port > 65535) {
    throw new InvalidArgumentError('expected a port number between 1024 and 65535');
  }
  return port;
}

export function parseSeconds(value: string): number {
  const seconds = Number(value);
  if (!/^\d+(\.\d+)?$/.test(value) || seconds <= 0 || seconds > 3600) {
    throw new InvalidArgumentError('expected a number of seconds, greater than 0 (e.g. 30)');
  }
  return seconds;
}

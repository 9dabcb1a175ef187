/** Where clamd listens: a unix socket (the same pod or lab namespace) or TCP. */
export type ClamdAddress = { path: string } | { host: string; port: number };

/**
 * "/run/clamav/clamd.ctl", "unix:/run/clamav/clamd.ctl", "127.0.0.1:3310" or "[::1]:3310".
 * Throws with the accepted forms on anything else.
 */
export function parseClamdAddress(text: string): ClamdAddress {
  const value = text.trim();
  if (value.startsWith('unix:')) return { path: value.slice('unix:'.length) };
  if (value.startsWith('/')) return { path: value };
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(value);
  const port = Number(match?.[3]);
  if (!match || port < 1 || port > 65535) {
    throw new Error(
      `"${text}" is not a clamd address: use a unix socket path (/run/clamav/clamd.ctl) or host:port (127.0.0.1:3310)`,
    );
  }
  return { host: match[1] ?? match[2] ?? '', port };
}

export function formatClamdAddress(address: ClamdAddress): string {
  if ('path' in address) return `unix:${address.path}`;
  return address.host.includes(':') ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}

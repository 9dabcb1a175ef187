/**
 * A URL fit for logs and error messages: its password (redis://:secret@host, nats://user:secret@host)
 * replaced by "***". Text that is not a URL comes back unchanged.
 */
export function redactUrl(value: string): string {
  try {
    const url = new URL(value);
    if (!url.password) return value;
    url.password = '***';
    return url.toString();
  } catch {
    return value;
  }
}

/** Errors raised while building URL category tables. */

/**
 * A list could not be used: a missing directory, an unreadable file, a bad source. `path` names
 * the file or directory and the message says what to do; the previous tables stay in use.
 */
export class UrlListError extends Error {
  override readonly name = 'UrlListError';

  constructor(
    message: string,
    /** The policy URL category the list belongs to. */
    readonly category: string,
    /** The file or directory at fault, when there is one. */
    readonly path?: string,
    /** The system error code (ENOENT, EACCES, ...) when one caused this. */
    readonly code?: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** The plain fields a build worker posts back for a failed build. */
export interface SerialisedBuildError {
  message: string;
  category?: string;
  path?: string;
  code?: string;
}

export function serialiseBuildError(error: unknown): SerialisedBuildError {
  if (error instanceof UrlListError) {
    return { message: error.message, category: error.category, path: error.path, code: error.code };
  }
  return { message: error instanceof Error ? error.message : String(error) };
}

export function deserialiseBuildError(error: SerialisedBuildError): Error {
  if (error.category === undefined) return new Error(`building URL category tables failed: ${error.message}`);
  return new UrlListError(error.message, error.category, error.path, error.code);
}

/** A URL pattern that cannot be compiled; the message quotes it and shows the accepted forms. */
export class UrlPatternError extends Error {
  override readonly name = 'UrlPatternError';

  constructor(readonly pattern: string) {
    super(
      `invalid URL pattern "${pattern}": expected a domain ("example.com"), a wildcard ("*.example.com"), ` +
        'or a URL prefix ("example.com/path", "https://example.com:8443/path")',
    );
  }
}

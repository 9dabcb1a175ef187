/**
 * What to do with one TLS connection, decided on its host name (CONNECT authority or SNI) before
 * any decryption: bump it (decrypt, then filter every request as plain HTTP), splice it (pass it
 * through, decided on the name alone), or block it. A pure function of the policy and the name.
 */
import type { UrlCategorizer } from '@moat/urlfilter';
import type { Inspection, TlsInspection } from '../policy/compile.js';
import type { Verdict } from '../policy/decide.js';

export type TlsPlan =
  | { action: 'splice'; reason: string; profile?: string }
  /** `blockPage`: the connection is bumped only to show this verdict's page; nothing goes upstream. */
  | { action: 'bump'; reason: string; tls: TlsInspection; blockPage?: Verdict }
  | { action: 'block'; verdict: Verdict };

export function planTls(
  inspection: Inspection | undefined,
  host: string,
  hostVerdict: Verdict,
  categorizer: UrlCategorizer,
): TlsPlan {
  const tls = inspection?.tls;
  // security rules (or no rule) refused the flow: nothing of it is decrypted
  if (hostVerdict.action === 'block' && hostVerdict.engine === 'firewall')
    return { action: 'block', verdict: hostVerdict };
  if (!tls) {
    if (hostVerdict.action === 'block') return { action: 'block', verdict: hostVerdict };
    return { action: 'splice', reason: 'No TLS inspection profile applies: decided on the host name only.' };
  }
  const categories = categorizer.categorize(host, '');
  const context = { rule: hostVerdict.rule, utmPolicy: hostVerdict.utmPolicy };
  const blockedCategory = categories.find((c) => tls.blockCategories.has(c));
  if (blockedCategory) {
    return {
      action: 'block',
      verdict: {
        ...definedOnly(context),
        action: 'block',
        engine: 'tls-mediation',
        tag: 'SSL_PROXY_SNI_BLOCKED',
        status: 403,
        category: blockedCategory,
        profile: tls.profile,
        reason: `TLS connections to the category "${blockedCategory}" are refused.`,
      },
    };
  }
  const splice = (reason: string): TlsPlan =>
    hostVerdict.action === 'block'
      ? { action: 'block', verdict: hostVerdict }
      : { action: 'splice', reason, profile: tls.profile };
  const pinned = tls.bypassHosts.match({ scheme: 'https', host, path: '' });
  if (pinned !== undefined) return splice(`The host is on the bypass list (${pinned}): never decrypted.`);
  const bypassed = categories.find((c) => tls.bypassCategories.has(c));
  if (bypassed) return splice(`The category "${bypassed}" is never decrypted.`);
  if (tls.mode === 'splice') return splice(`The TLS inspection profile "${tls.profile}" splices.`);
  if (hostVerdict.action === 'block')
    return { action: 'bump', reason: 'Decrypted to show the block page.', tls, blockPage: hostVerdict };
  return { action: 'bump', reason: `The TLS inspection profile "${tls.profile}" decrypts.`, tls };
}

function definedOnly<T extends Record<string, unknown>>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

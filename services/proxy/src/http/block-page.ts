import type { Verdict } from '../policy/decide.js';

/**
 * What a blocked or failed request looks like to a person: the reason in plain words, the rule or
 * category that decided, and the trace id an administrator can look up. HTML for browsers, plain
 * text for everything else.
 */

export interface BlockPage {
  status: number;
  /** One-line title, e.g. "Blocked: category gambling". */
  title: string;
  /** Why, in a sentence or two. */
  reason: string;
  url?: string;
  /** Extra lines shown as "Key: value" (rule, category, signature, …). */
  facts: Record<string, string | undefined>;
  /** Text the administrator configured for the profile. */
  message?: string;
  traceId?: string;
  proxyName: string;
}

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function factLines(page: BlockPage): [string, string][] {
  const lines: [string, string][] = [];
  if (page.url) lines.push(['URL', page.url]);
  for (const [key, value] of Object.entries(page.facts)) if (value) lines.push([key, value]);
  if (page.traceId) lines.push(['Trace ID', page.traceId]);
  lines.push(['Time', new Date().toISOString()]);
  lines.push(['Proxy', page.proxyName]);
  return lines;
}

export function renderText(page: BlockPage): string {
  const lines = [page.title, '', page.reason];
  if (page.message) lines.push('', page.message);
  lines.push('');
  for (const [key, value] of factLines(page)) lines.push(`${key}: ${value}`);
  if (page.traceId) lines.push('', 'Quote the trace ID when you contact your administrator.');
  return `${lines.join('\n')}\n`;
}

export function renderHtml(page: BlockPage): string {
  const rows = factLines(page)
    .map(([key, value]) => `<tr><th>${escapeHtml(key)}</th><td><code>${escapeHtml(value)}</code></td></tr>`)
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<meta name="robots" content="noindex"><title>${escapeHtml(page.title)}</title>
<style>body{font-family:system-ui,sans-serif;max-width:46rem;margin:3rem auto;padding:0 1rem;color:#222}
h1{font-size:1.4rem;border-bottom:3px solid #b00;padding-bottom:.4rem}th{text-align:left;padding-right:1rem;vertical-align:top}
td code{word-break:break-all}.msg{background:#f6f6f6;padding:.6rem 1rem;border-left:4px solid #888}</style></head>
<body><h1>${escapeHtml(page.title)}</h1>
<p>${escapeHtml(page.reason)}</p>
${page.message ? `<p class="msg">${escapeHtml(page.message)}</p>\n` : ''}<table>
${rows}
</table>
${page.traceId ? '<p>Quote the trace ID when you contact your administrator.</p>\n' : ''}</body></html>
`;
}

/** Picks HTML when the client says it accepts it (browsers do), plain text otherwise (curl, APIs). */
export function renderBlockPage(page: BlockPage, accept: string | undefined): { type: string; body: string } {
  return accept?.includes('text/html')
    ? { type: 'text/html; charset=utf-8', body: renderHtml(page) }
    : { type: 'text/plain; charset=utf-8', body: renderText(page) };
}

/**
 * The page for a proxy verdict, ready to send: the verdict's reason, rule, category, URL pattern
 * and engine, the trace id, and the headers every block page carries.
 */
export function renderVerdictPage(
  verdict: Verdict,
  opts: { title: string; url?: string; traceId?: string; proxyName: string },
  accept: string | undefined,
): { body: string; headers: Record<string, string> } {
  const { type, body } = renderBlockPage(
    {
      status: verdict.status,
      title: opts.title,
      reason: verdict.reason,
      ...(opts.url ? { url: opts.url } : {}),
      facts: {
        'Security rule': verdict.rule,
        Category: verdict.category,
        Signature: verdict.signature,
        'URL pattern': verdict.pattern,
        'Decided by': verdict.engine,
      },
      ...(verdict.message ? { message: verdict.message } : {}),
      ...(opts.traceId ? { traceId: opts.traceId } : {}),
      proxyName: opts.proxyName,
    },
    accept,
  );
  return {
    body,
    headers: {
      'content-type': type,
      'cache-control': 'no-store',
      'x-moat-trace-id': opts.traceId ?? '',
      via: `1.1 ${opts.proxyName}`,
    },
  };
}

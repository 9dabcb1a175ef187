/**
 * End-to-end check of the antivirus pipeline, the way a proxy uses it: EICAR must come back infected
 * with a signature named, and unique random content (one inline job, one through the object store)
 * must come back clean from a worker. It exercises the scan queue, a worker, its clamd and the
 * verdict path; the chart's `helm test` runs it, and operators can run it against any deployment.
 * Usage: node dist/scan-check-main.js [--nats URL] [--redis URL] [--timeout-ms N] [--json]
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { EICAR } from '@moat/clamav';
import { redactUrl } from '@moat/config';
import { ScanClient, type ScanVerdict } from '@moat/scan';
import { baseConfigSchema } from '@moat/service-kit';
import { connect } from '@nats-io/transport-node';
import { Redis } from 'ioredis';

const USAGE = `usage: scan-check-main.js [--nats URL] [--redis URL] [--timeout-ms N] [--json]

Checks Moat's antivirus end to end, as the proxy scans: it queues three scan jobs and checks the
verdicts that come back.
  eicar        the EICAR test file: must be infected, with the signature named
  clean-4k     4 KiB of fresh random bytes (an inline job): must be clean, scanned by a worker
  clean-1m     1 MiB of fresh random bytes (through the object store): must be clean, scanned

  --nats URL        NATS (default MOAT_NATS_URL, else nats://127.0.0.1:4222)
  --redis URL       Redis, for the verdict cache (default MOAT_REDIS_URL, else redis://127.0.0.1:6379)
  --timeout-ms N    how long to wait for each verdict (default 30000)
  --json            one JSON object instead of text
  -h, --help        this text

Exit status: 0 when every verdict is as expected, 1 when one is not (the output says which and why),
2 on a usage error.`;

interface Check {
  name: string;
  content: Buffer;
  expect: 'infected' | 'clean';
  /** Fresh content must be scanned by a worker, never answered from the cache. */
  fresh: boolean;
}

interface CheckResult {
  name: string;
  ok: boolean;
  problem?: string;
  verdict: Pick<ScanVerdict, 'result' | 'signature' | 'reason' | 'cached' | 'worker' | 'signatureVersion'>;
  ms: number;
}

function judge(check: Check, verdict: ScanVerdict): string | undefined {
  if (verdict.result === 'error') return `no verdict: ${verdict.reason ?? 'unknown error'}`;
  if (verdict.result !== check.expect) return `expected ${check.expect}, got ${verdict.result}`;
  if (check.expect === 'infected' && !verdict.signature) return 'infected, but no signature named';
  if (check.fresh && verdict.cached) return 'fresh content came from the verdict cache';
  return undefined;
}

async function main(): Promise<number> {
  let values: { nats?: string; redis?: string; 'timeout-ms'?: string; json?: boolean; help?: boolean };
  try {
    ({ values } = parseArgs({
      options: {
        nats: { type: 'string' },
        redis: { type: 'string' },
        'timeout-ms': { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    console.error(`${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const timeoutMs = Number(values['timeout-ms'] ?? 30_000);
  if (!Number.isInteger(timeoutMs) || timeoutMs < 100) {
    console.error(`--timeout-ms must be an integer of at least 100, got ${values['timeout-ms']}`);
    return 2;
  }
  // the services' own defaults and URL checks
  const urls = baseConfigSchema.pick({ natsUrl: true, redisUrl: true }).safeParse({
    natsUrl: values.nats ?? process.env.MOAT_NATS_URL,
    redisUrl: values.redis ?? process.env.MOAT_REDIS_URL,
  });
  if (!urls.success) {
    const source = { natsUrl: '--nats or MOAT_NATS_URL', redisUrl: '--redis or MOAT_REDIS_URL' };
    for (const issue of urls.error.issues)
      console.error(
        `${source[issue.path[0] as keyof typeof source] ?? issue.path.join('.')}: ${issue.message}`,
      );
    return 2;
  }
  const { natsUrl, redisUrl } = urls.data;
  // helm test logs are read by more people than the Secret holding the URLs
  const [natsShown, redisShown] = [redactUrl(natsUrl), redactUrl(redisUrl)];

  let nc: Awaited<ReturnType<typeof connect>>;
  try {
    nc = await connect({ servers: natsUrl, name: 'av-scanner scan-check', timeout: 5_000 });
  } catch (err) {
    console.error(
      `cannot connect to NATS at ${natsShown}: ${(err as Error).message} (set --nats or MOAT_NATS_URL)`,
    );
    return 1;
  }
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1, connectTimeout: 5_000 });
  redis.on('error', () => undefined); // reported below, once
  try {
    await redis.connect();
  } catch (err) {
    console.error(
      `cannot connect to Redis at ${redisShown}: ${(err as Error).message} (set --redis or MOAT_REDIS_URL)`,
    );
    await nc.close();
    return 1;
  }

  const checks: Check[] = [
    // EICAR may be answered from the cache: a verdict reached with the current signatures all the same
    { name: 'eicar', content: EICAR, expect: 'infected', fresh: false },
    { name: 'clean-4k', content: randomBytes(4096), expect: 'clean', fresh: true },
    { name: 'clean-1m', content: randomBytes(2 ** 20), expect: 'clean', fresh: true },
  ];
  const scanner = new ScanClient({ nc, redis });
  const results: CheckResult[] = [];
  try {
    for (const check of checks) {
      const started = performance.now();
      const verdict = await scanner.scan({
        content: check.content,
        timeoutMs,
        direction: 'download',
        url: `moat-scan-check:${check.name}`,
      });
      const problem = judge(check, verdict);
      results.push({
        name: check.name,
        ok: !problem,
        ...(problem ? { problem } : {}),
        verdict: {
          result: verdict.result,
          cached: verdict.cached,
          worker: verdict.worker,
          ...(verdict.signature ? { signature: verdict.signature } : {}),
          ...(verdict.reason ? { reason: verdict.reason } : {}),
          ...(verdict.signatureVersion ? { signatureVersion: verdict.signatureVersion } : {}),
        },
        ms: Math.round(performance.now() - started),
      });
    }
  } finally {
    scanner.close();
    redis.disconnect();
    await nc.close();
  }

  const ok = results.every((r) => r.ok);
  if (values.json) console.log(JSON.stringify({ ok, nats: natsShown, results }, null, 2));
  else {
    for (const r of results) {
      const v = r.verdict;
      const what = `${v.result}${v.signature ? ` (${v.signature})` : ''}${v.cached ? ', from the verdict cache' : ''}, worker ${v.worker}, ${r.ms} ms`;
      console.log(
        `${r.ok ? 'ok  ' : 'FAIL'} ${r.name.padEnd(9)} ${what}${r.problem ? `: ${r.problem}` : ''}`,
      );
    }
    console.log(
      ok
        ? 'the antivirus pipeline works: jobs are taken, clamd scans, verdicts come back'
        : 'the antivirus pipeline does not work as it should: see `moatctl status` (antivirus workers, queue depth) and the av-scanner logs',
    );
  }
  return ok ? 0 : 1;
}

process.exitCode = await main().catch((err: unknown) => {
  console.error(`scan-check failed: ${(err as Error).message}`);
  return 1;
});

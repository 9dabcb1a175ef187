/**
 * What the proxy's lab tests share: whether the lab can run here, `moat lab up` with the demo
 * policy, curl in moat-lan, and traces from the lab's collector.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { LAB_NAMESPACES, labPaths } from '@moat/cli';
import { type CollectedSpan, parseOtlpJsonLines, runCommand } from '@moat/testkit';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
export const MOAT = `${ROOT}bin/moat`;
export const MOATCTL = `${ROOT}bin/moatctl`;
export const DEMO_POLICY = `${ROOT}examples/policies/demo.yaml`;
/** The explicit proxy, as the LAN reaches it. */
export const LAB_PROXY = 'http://10.70.1.1:3128';
/** tls-mediation's CA endpoint, as the LAN reaches it. */
export const LAB_CA_ENDPOINT = 'http://10.70.1.1:9406';

/** Why the lab tests cannot run here (printed loudly by the caller), or undefined. */
export function labSkipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'not root: the lab needs network namespaces (run the tests with sudo)';
  const namespaces = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  if (Object.values(LAB_NAMESPACES).some((ns) => namespaces.includes(ns))) {
    return 'a lab is already up (run `moat lab down` first); not touching it';
  }
  if (!existsSync('/opt/moat/otelcol/otelcol-moat') && !process.env.MOAT_OTELCOL_BIN) {
    return 'no OpenTelemetry Collector (run scripts/setup.sh): the trace check needs it';
  }
  return undefined;
}

/** `moat lab up`, then the demo policy applied and in force; throws with the output on failure. */
export async function labUpWithDemoPolicy(): Promise<void> {
  const up = await runCommand(MOAT, ['lab', 'up'], { timeoutMs: 120_000 });
  if (up.code !== 0) throw new Error(`moat lab up failed:\n${up.stdout}\n${up.stderr}`);
  const apply = await runCommand(MOATCTL, ['apply', '-f', DEMO_POLICY, '--wait'], { timeoutMs: 30_000 });
  if (apply.code !== 0) throw new Error(`moatctl apply failed:\n${apply.stdout}\n${apply.stderr}`);
}

export async function labDown(): Promise<void> {
  await runCommand(MOAT, ['lab', 'down'], { timeoutMs: 60_000 });
}

export interface LanReply {
  /** The HTTP status, or curl's exit code as "curl:<n>" when it got no response. */
  status: number | string;
  traceId: string | undefined;
  headers: string;
  body: string;
  stderr: string;
}

/** curl in moat-lan (`-v` output lands in stderr). */
export async function curlInLan(url: string, ...flags: string[]): Promise<LanReply> {
  const result = await runCommand(
    'ip',
    ['netns', 'exec', LAB_NAMESPACES.lan, 'curl', '-sS', '-m', '8', '-D', '-', ...flags, url],
    { timeoutMs: 15_000 },
  );
  // through the explicit proxy, -D first shows the CONNECT's own response
  const stdout = result.stdout.replace(
    /^HTTP\/1\.[01] 200 Connection established\r\n(?:[^\r\n]+\r\n)*\r\n/i,
    '',
  );
  const [head = '', ...rest] = stdout.split('\r\n\r\n');
  return {
    status:
      result.code === 0 ? Number(/^HTTP\/1\.[01] (\d{3})/m.exec(head)?.[1] ?? 0) : `curl:${result.code}`,
    traceId: /^x-moat-trace-id: ([0-9a-f]{32})/im.exec(head)?.[1],
    headers: head,
    body: rest.join('\r\n\r\n'),
    stderr: result.stderr,
  };
}

/** The spans of `traceId` at the lab's collector, once its server span has arrived. */
export async function labTrace(
  traceId: string,
  complete = (spans: CollectedSpan[]) => spans.some((s) => s.kind === 'SERVER'),
): Promise<CollectedSpan[]> {
  const file = labPaths().traces;
  for (let i = 0; i < 100; i++) {
    const spans = existsSync(file)
      ? parseOtlpJsonLines(readFileSync(file, 'utf8')).filter((s) => s.traceId === traceId)
      : [];
    if (complete(spans)) return spans;
    await sleep(100);
  }
  throw new Error(`trace ${traceId} did not reach the lab collector (${file})`);
}

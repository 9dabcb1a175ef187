import type { EventInput } from '@moat/log';
import type { ScanJobMeta, ScanVerdict } from '@moat/scan';

const TAGS = { clean: 'AV_SCAN_CLEAN', infected: 'AV_VIRUS_DETECTED', error: 'AV_SCAN_ERROR' } as const;
const SEVERITY = { clean: 'info', infected: 'warning', error: 'error' } as const;

/** events.av.clean|infected|error: one per verdict, with the trace that shows the request. */
export function verdictEvent(
  meta: ScanJobMeta,
  verdict: ScanVerdict,
  traceId: string,
  instance: string,
): EventInput {
  return {
    tag: TAGS[verdict.result],
    engine: 'av',
    action: verdict.result,
    severity: SEVERITY[verdict.result],
    reason:
      verdict.result === 'infected'
        ? `Detected ${verdict.signature}${verdict.cached ? ' (cached verdict)' : ''}.`
        : verdict.result === 'clean'
          ? `No signature matched${verdict.cached ? ' (cached verdict)' : ''}.`
          : `No verdict: ${verdict.reason}`,
    service: 'av-scanner',
    instance,
    ...(verdict.signature ? { signature: verdict.signature } : {}),
    ...(meta.url ? { url: meta.url } : {}),
    bytes: meta.size,
    durationMs: Math.round(verdict.scanMs * 100) / 100,
    ...(/^[0-9a-f]{32}$/.test(traceId) && !/^0+$/.test(traceId) ? { traceId } : {}),
    details: {
      direction: meta.direction,
      sha256: meta.sha256,
      cached: verdict.cached,
      ...(verdict.signatureVersion ? { signatureVersion: verdict.signatureVersion } : {}),
    },
  };
}

import { randomUUID } from 'node:crypto';
import { trace } from '@opentelemetry/api';
import { z } from 'zod';

/** The engines that emit events; the subject is `events.<engine>.<action>`. */
export const eventEngines = [
  'firewall',
  'web',
  'tls',
  'av',
  'waf',
  'vpn',
  'qos',
  'control',
  'system',
] as const;
export type EventEngine = (typeof eventEngines)[number];

const endpoint = z
  .object({
    ip: z.string().optional(),
    port: z.number().int().min(0).max(65535).optional(),
    zone: z.string().optional(),
    host: z.string().optional(),
    interface: z.string().optional(),
  })
  .strict();
export type Endpoint = z.infer<typeof endpoint>;

/**
 * One security event, after the RT_UTM / RT_FLOW messages of Junos: what engine decided
 * what, why, under which rule/profile/signature/category, for whom, between which endpoints,
 * and the trace that shows the whole flow.
 */
export const moatEventSchema = z
  .object({
    id: z.string(),
    time: z.string(),
    /** Junos-style message tag, e.g. WEBFILTER_URL_BLOCKED, AV_VIRUS_DETECTED. */
    tag: z.string().regex(/^[A-Z][A-Z0-9_]*$/),
    engine: z.enum(eventEngines),
    /** Lower-case verb: allowed, blocked, denied, infected, clean, error, up, down, applied, rejected… */
    action: z.string().regex(/^[a-z][a-z0-9_]*$/),
    severity: z.enum(['debug', 'info', 'notice', 'warning', 'error', 'critical']),
    reason: z.string(),
    service: z.string(),
    instance: z.string().optional(),
    rule: z.string().optional(),
    utmPolicy: z.string().optional(),
    profile: z.string().optional(),
    category: z.string().optional(),
    signature: z.string().optional(),
    url: z.string().optional(),
    user: z.string().optional(),
    protocol: z.string().optional(),
    source: endpoint.optional(),
    destination: endpoint.optional(),
    bytes: z.number().int().nonnegative().optional(),
    durationMs: z.number().nonnegative().optional(),
    policyVersion: z.number().int().nonnegative().optional(),
    traceId: z
      .string()
      .regex(/^[0-9a-f]{32}$/)
      .optional(),
    spanId: z
      .string()
      .regex(/^[0-9a-f]{16}$/)
      .optional(),
    details: z.record(z.string(), z.unknown()).optional(),
  })
  .strict();
export type MoatEvent = z.infer<typeof moatEventSchema>;
export type EventInput = Omit<MoatEvent, 'id' | 'time' | 'traceId' | 'spanId' | 'severity'> &
  Partial<Pick<MoatEvent, 'severity' | 'traceId' | 'spanId'>>;

/** Builds a validated event, stamping id, time and the active trace. Throws on a malformed event. */
export function makeEvent(input: EventInput): MoatEvent {
  const ctx = trace.getActiveSpan()?.spanContext();
  return moatEventSchema.parse({
    severity: 'info',
    ...(ctx ? { traceId: ctx.traceId, spanId: ctx.spanId } : {}),
    ...input,
    id: randomUUID(),
    time: new Date().toISOString(),
  });
}

/**
 * makeEvent without the runtime schema check, for hot paths (the proxy emits one per request) whose
 * input the type system already constrains; their tests check the output against the schema.
 * Does not read the active span: pass traceId/spanId explicitly.
 */
export function makeEventUnchecked(input: EventInput): MoatEvent {
  return { severity: 'info', ...input, id: randomUUID(), time: new Date().toISOString() };
}

import {
  type Context,
  context,
  propagation,
  type TextMapGetter,
  type TextMapSetter,
} from '@opentelemetry/api';

/** The part of nats.js `MsgHdrs` the propagator needs (kept structural: no NATS import here). */
export interface NatsHeadersLike {
  set(key: string, value: string): void;
  get(key: string): string;
  keys(): string[];
}

/** The part of grpc-js `Metadata` the propagator needs. */
export interface GrpcMetadataLike {
  set(key: string, value: string): void;
  get(key: string): unknown[];
  getMap(): Record<string, unknown>;
}

const natsSetter: TextMapSetter<NatsHeadersLike> = { set: (h, k, v) => h.set(k, v) };
const natsGetter: TextMapGetter<NatsHeadersLike> = {
  keys: (h) => h.keys(),
  get: (h, k) => h.get(k) || undefined,
};
const grpcSetter: TextMapSetter<GrpcMetadataLike> = { set: (m, k, v) => m.set(k, v) };
const grpcGetter: TextMapGetter<GrpcMetadataLike> = {
  keys: (m) => Object.keys(m.getMap()),
  get: (m, k) => {
    const v = m.get(k)[0];
    return typeof v === 'string' ? v : undefined;
  },
};

/** Writes W3C `traceparent`/`tracestate` of `ctx` (default: active) into NATS headers. */
export function injectIntoNatsHeaders(headers: NatsHeadersLike, ctx: Context = context.active()): void {
  propagation.inject(ctx, headers, natsSetter);
}

/** The context carried by NATS headers (or the active one when there are none). */
export function contextFromNatsHeaders(headers: NatsHeadersLike | undefined): Context {
  return headers ? propagation.extract(context.active(), headers, natsGetter) : context.active();
}

/** Writes W3C trace context into gRPC metadata. */
export function injectIntoGrpcMetadata(metadata: GrpcMetadataLike, ctx: Context = context.active()): void {
  propagation.inject(ctx, metadata, grpcSetter);
}

/** The context carried by gRPC metadata. */
export function contextFromGrpcMetadata(metadata: GrpcMetadataLike): Context {
  return propagation.extract(context.active(), metadata, grpcGetter);
}

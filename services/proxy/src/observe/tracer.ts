import { getTracer } from '@moat/telemetry';

/**
 * The proxy's tracer, looked up once. Taken before the SDK starts, it is the API's proxy tracer,
 * which delegates to the real one as soon as the SDK registers.
 */
export const tracer = getTracer('moat-proxy');

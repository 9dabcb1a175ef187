import { probeOnce, type ReadyCheck } from '../probes.js';

/**
 * Entry point run INSIDE a lab namespace (`ip netns exec moat-gw node probe-main.js '<json>'`):
 * one readiness probe, exit 0 when ready, 1 when not. The host cannot reach
 * 127.0.0.1 of another namespace, so the probe has to travel there.
 */

const check = JSON.parse(process.argv[2] ?? '{}') as ReadyCheck;
process.exitCode = (await probeOnce(check)) ? 0 : 1;

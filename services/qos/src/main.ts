// first: V8 settings that must precede everything else (see service-kit/runtime.ts)
import '@moat/service-kit/runtime';
import { ConfigError } from '@moat/config';
import { createLogger } from '@moat/log';
import type { PolicyRecord } from '@moat/policy';
import { every, serialQueue, startServiceKit } from '@moat/service-kit';
import { Registry } from 'prom-client';
import { loadQosConfig } from './config.js';
import { createQosMetrics } from './metrics.js';
import { Shaper } from './shaper.js';

const VERSION = process.env.MOAT_VERSION ?? '0.1.0';

async function main() {
  const config = loadQosConfig();
  const log = createLogger({ service: 'qos', level: config.logLevel });
  const registry = new Registry();
  const shaper = new Shaper(config.netns ? { prefix: ['ip', 'netns', 'exec', config.netns] } : {});
  const metrics = createQosMetrics(registry, shaper);
  // policy changes and rechecks both drive tc: one at a time
  const serial = serialQueue();
  let inForce: PolicyRecord | undefined;

  const kit = await startServiceKit({
    service: 'qos',
    version: VERSION,
    config,
    log,
    registry,
    // A policy this host cannot carry out throws: a missing interface is refused before anything
    // changes, a tree tc refuses undoes what the change wrote; the kit reports the failure to
    // `moatctl status` / `apply --wait`.
    applyPolicy: async (record) => {
      const outcome = await serial(() => shaper.apply(record.policy));
      inForce = record;
      metrics.applied(outcome);
      log.info(
        {
          version: record.version,
          applied: outcome.applied,
          unchanged: outcome.unchanged,
          removed: outcome.removed,
          applyMs: Math.round(outcome.applyMs),
        },
        outcome.applied.length + outcome.removed.length > 0
          ? `qos for policy v${record.version} applied`
          : 'qos unchanged',
      );
    },
    queries: { classes: () => shaper.classes() },
    details: () => ({
      ...(config.netns ? { netns: config.netns } : {}),
      trees: shaper.trees.map((tree) => ({
        interface: tree.interface,
        direction: tree.direction,
        device: tree.device,
        rate: tree.rate,
        classes: tree.classes.length,
        defaultClass: tree.defaultClass,
      })),
    }),
  });
  const stopRechecks = every(config.recheckSeconds, async () => {
    const record = inForce;
    if (!record) return;
    try {
      const outcome = await serial(() => shaper.apply(record.policy));
      if (outcome.applied.length === 0) return;
      metrics.restored(outcome.applied.length);
      metrics.applied(outcome);
      log.warn(
        { version: record.version, restored: outcome.applied },
        'the kernel had lost qos trees (an interface recreated or a qdisc deleted); written again',
      );
    } catch (err) {
      metrics.recheckFailed();
      log.error(
        { version: record.version, err: (err as Error).message },
        'qos recheck could not restore the trees',
      );
    }
  });
  kit.onShutdown({ name: 'stop qos rechecks', run: stopRechecks });
  // Stopping leaves the trees in the kernel: a restart must not unshape the uplink for a moment.
  kit.log.info({ httpPort: kit.httpPort, recheckSeconds: config.recheckSeconds }, 'qos ready');
}

main().catch((err: unknown) => {
  console.error(err instanceof ConfigError ? err.message : `qos failed to start: ${(err as Error).message}`);
  process.exit(1);
});

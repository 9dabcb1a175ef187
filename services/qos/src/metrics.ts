/** The qos service's Prometheus metrics. Class statistics are read from tc when /metrics is scraped. */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { ClassView, ShapeOutcome, Shaper } from './shaper.js';

const CLASS_LABELS = ['interface', 'direction', 'class'] as const;

export function createQosMetrics(registry: Registry, shaper: Shaper) {
  // one tc read serves every class gauge of a scrape
  let snapshot: { at: number; views: Promise<ClassView[]> } | undefined;
  const classes = () => {
    if (!snapshot || performance.now() - snapshot.at > 1000) {
      snapshot = { at: performance.now(), views: shaper.classes().catch(() => []) };
    }
    return snapshot.views;
  };
  const classGauge = (name: string, help: string, read: (view: ClassView) => number | undefined) =>
    new Gauge({
      name,
      help,
      labelNames: CLASS_LABELS,
      registers: [registry],
      async collect() {
        this.reset();
        for (const view of await classes()) {
          const value = read(view);
          if (value !== undefined) {
            this.set({ interface: view.interface, direction: view.direction, class: view.class }, value);
          }
        }
      },
    });
  // HTB counters restart when a tree is rebuilt, so they are gauges rather than Prometheus counters
  classGauge(
    'moat_qos_class_bytes',
    'Bytes a class has sent since its tree was built',
    (v) => v.stats?.bytes,
  );
  classGauge(
    'moat_qos_class_packets',
    'Packets a class has sent since its tree was built',
    (v) => v.stats?.packets,
  );
  classGauge('moat_qos_class_drops', 'Packets a class has dropped (queue full)', (v) => v.stats?.drops);
  classGauge(
    'moat_qos_class_overlimits',
    'Times a class had to wait because it was over its rate and could not borrow',
    (v) => v.stats?.overlimits,
  );
  classGauge(
    'moat_qos_class_rate_bits_per_second',
    "The kernel's estimate of a class's current rate",
    (v) => v.stats?.rateBps,
  );
  classGauge('moat_qos_class_backlog_packets', 'Packets queued in a class', (v) => v.stats?.backlogPackets);
  classGauge('moat_qos_class_ceil_bits_per_second', 'Configured ceiling of a class', (v) => v.ceil);
  const applySeconds = new Gauge({
    name: 'moat_qos_apply_seconds',
    help: 'Time the last qos change took to write',
    registers: [registry],
  });
  const trees = new Gauge({
    name: 'moat_qos_trees',
    help: 'HTB trees in force (one per shaped interface and direction)',
    registers: [registry],
  });
  const restored = new Counter({
    name: 'moat_qos_restored_trees_total',
    help: 'Trees the kernel had lost (interface recreated, qdisc deleted) and the recheck wrote again',
    registers: [registry],
  });
  const recheckFailures = new Counter({
    name: 'moat_qos_recheck_failures_total',
    help: 'Rechecks that could not restore the trees (see the log)',
    registers: [registry],
  });
  return {
    restored: (trees: number) => restored.inc(trees),
    recheckFailed: () => recheckFailures.inc(),
    applied(outcome: ShapeOutcome) {
      applySeconds.set(outcome.applyMs / 1000);
      trees.set(shaper.trees.length);
      snapshot = undefined;
    },
  };
}

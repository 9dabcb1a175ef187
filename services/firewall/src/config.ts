import { port } from '@moat/config';
import { baseConfigSchema, loadServiceConfig } from '@moat/service-kit';
import { z } from 'zod';

/** Every MOAT_FIREWALL_* setting. */
export const firewallConfigSchema = baseConfigSchema.extend({
  /** Health, readiness and metrics. */
  httpPort: port().default(9403),
  /**
   * `apply` writes the table into the kernel. `check` only asks nft whether it would accept the
   * table (`nft -c`) and changes nothing: `moat dev` runs it this way so a workstation's own
   * firewall is never touched.
   */
  mode: z.enum(['apply', 'check']).default('apply'),
  /** The one nftables table (family inet) the firewall owns. */
  table: z
    .string()
    .regex(/^moat[a-z0-9_]*$/, 'the table name must start with "moat" (letters, digits, "_")')
    .default('moat'),
  /** The proxy's transparent HTTP port on this host; intercepted tcp/80 goes there. 0 = no interception. */
  interceptHttpPort: port().default(3129),
  /** The proxy's intercepted-TLS port; tcp/443 goes there. 0 = no interception. */
  interceptTlsPort: port().default(3130),
  /**
   * Manage the nftables of this network namespace (`ip netns exec <name> nft`) rather than this
   * process's own; for a gateway namespace on a shared host. Default: the process's namespace.
   */
  netns: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'expected a network namespace name (see `ip netns list`)')
    .optional(),
  /**
   * Seconds between checks that the kernel still holds Moat's table (`nft flush ruleset` by another
   * tool would open the gateway); a lost table is written again at once. 0: never.
   */
  recheckSeconds: z.coerce.number().int().min(0).max(3600).default(5),
  /** The ulogd binary that reads denied flows from nflog (Debian: ulogd2, ulogd2-json); `off` reports none. */
  ulogd: z.string().default('ulogd'),
  /** Directory for ulogd's configuration, log and socket (default: a new one under the temp dir). */
  runDir: z.string().optional(),
  /** nflog group that denied flows are logged to. */
  logGroup: z.coerce.number().int().min(0).max(65_535).default(1),
});
export type FirewallConfig = z.infer<typeof firewallConfigSchema>;

export const loadFirewallConfig = (env = process.env): FirewallConfig =>
  loadServiceConfig('firewall', firewallConfigSchema, env) as FirewallConfig;

/**
 * IPsec VPN (IKEv2, strongSwan): IKE defaults, virtual-IP pools, connections with their child SAs, and
 * secrets. Policy is stored centrally, so secrets are best given as references to an environment variable or
 * a file on the gateway rather than inline.
 */
import { z } from 'zod';
import {
  absolutePathSchema,
  descriptionSchema,
  nameSchema,
  oneOrMany,
  refSchema,
  strictObject,
  uniqueList,
  zoneRefSchema,
} from './common.js';
import { addressLiteralSchema, addressOrRefSchema, parseAddress } from './net.js';
import { durationSchema } from './units.js';

/** Algorithms strongSwan still accepts but that must not be used. */
export const WEAK_IPSEC_ALGORITHMS: readonly string[] = ['des', '3des', 'md5', 'modp768', 'modp1024', 'null'];

export const proposalSchema = z
  .string()
  .regex(
    /^[a-z0-9]+(?:-[a-z0-9]+)*$/,
    'expected a strongSwan proposal such as "aes256gcm16-prfsha384-ecp384"',
  )
  .superRefine((proposal, ctx) => {
    const weak = proposal.split('-').filter((token) => WEAK_IPSEC_ALGORITHMS.includes(token));
    if (weak.length > 0) {
      ctx.addIssue({
        code: 'custom',
        message: `proposal uses weak algorithm(s) ${weak.join(', ')}; choose e.g. aes256gcm16-prfsha384-ecp384`,
      });
    }
  })
  .describe('A strongSwan proposal: algorithms joined by "-", e.g. aes256gcm16-prfsha384-ecp384.');

export const DEFAULT_IKE_PROPOSALS = ['aes256gcm16-prfsha384-ecp384', 'aes256-sha256-modp3072'];
export const DEFAULT_ESP_PROPOSALS = ['aes256gcm16-ecp384', 'aes256gcm16'];

const identitySchema = z
  .string()
  .min(1, 'an identity must not be empty')
  .max(255)
  .regex(/^\S(?:.*\S)?$/, 'identities must not start or end with white space')
  .describe('An IKE identity: FQDN, email, IP address, distinguished name, or "%any".');

const endpointSchema = z
  .string()
  .superRefine((text, ctx) => {
    if (text === '%any') return;
    const parsed = parseAddress(text);
    if ('error' in parsed) ctx.addIssue({ code: 'custom', message: `${parsed.error}; or use "%any"` });
  })
  .describe('"%any", an IP address, prefix, range or DNS name.');

export const secretRefSchema = z
  .union(
    [
      strictObject({
        env: z
          .string()
          .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected an environment variable name')
          .describe('Environment variable of the vpn service holding the secret.'),
      }),
      strictObject({
        file: absolutePathSchema.describe(
          'File on the gateway holding the secret (trailing newline ignored).',
        ),
      }),
    ],
    { error: 'expected {env: VARIABLE} or {file: /absolute/path}' },
  )
  .describe('Where the vpn service reads the secret: {env: NAME} or {file: /path}.');

const secretFields = {
  secret: z
    .string()
    .min(1)
    .optional()
    .describe('The secret inline (stored with the policy; prefer secretRef).'),
  secretRef: secretRefSchema.optional(),
};

export const pskSecretSchema = strictObject({
  ids: oneOrMany(identitySchema, 'an identity')
    .optional()
    .describe('Identities the key is for (default: any peer).'),
  ...secretFields,
}).meta({ title: 'Pre-shared key', description: 'Exactly one of secret or secretRef.' });

export const eapSecretSchema = strictObject({
  id: identitySchema.describe('EAP user name.'),
  ...secretFields,
}).meta({ title: 'EAP user', description: 'Exactly one of secret or secretRef.' });

export const vpnPoolSchema = strictObject({
  description: descriptionSchema,
  addresses: addressLiteralSchema(['prefix', 'range'], 'a CIDR prefix or address range').describe(
    'Virtual IPs handed to clients: a prefix ("10.10.0.0/24") or range.',
  ),
  dns: uniqueList(addressLiteralSchema(['ip'], 'an IP address'), 'server')
    .optional()
    .describe('DNS servers pushed to clients.'),
}).meta({ title: 'VPN pool', description: 'A virtual IP pool for remote clients.' });

const trafficSelectorSchema = z
  .union(
    [z.literal('dynamic'), addressOrRefSchema(['ip', 'prefix', 'range'], 'an address, prefix or range')],
    {
      error: 'expected "dynamic", an address, prefix or range, or the name of an address',
    },
  )
  .describe(
    '"dynamic" (the virtual / outer IP), an address, prefix, range, or the name of an address object.',
  );

export const vpnChildSchema = strictObject({
  description: descriptionSchema,
  localTs: z
    .array(trafficSelectorSchema)
    .min(1, 'list at least one local traffic selector')
    .describe('Local traffic selectors.'),
  remoteTs: z
    .array(trafficSelectorSchema)
    .min(1)
    .default(['dynamic'])
    .describe('Remote traffic selectors (default dynamic).'),
  espProposals: z.array(proposalSchema).min(1).default(DEFAULT_ESP_PROPOSALS).describe('ESP proposals.'),
  startAction: z
    .enum(['none', 'trap', 'start'])
    .default('none')
    .describe('none (wait for the peer), trap (on traffic) or start (at load). Default none.'),
  closeAction: z
    .enum(['none', 'trap', 'start'])
    .default('none')
    .describe('What to do when the peer closes it.'),
  dpdAction: z
    .enum(['clear', 'trap', 'restart'])
    .default('clear')
    .describe('What to do when the peer is dead.'),
  rekeyTime: durationSchema.optional().describe('Child SA rekey interval (strongSwan default 1h).'),
}).meta({ title: 'Child SA', description: 'Traffic selectors and ESP settings of a child SA.' });

export const vpnConnectionSchema = strictObject({
  description: descriptionSchema,
  version: z.literal(2, 'only IKEv2 is supported (version: 2)').default(2).describe('IKE version; only 2.'),
  localAddrs: z
    .array(endpointSchema)
    .min(1)
    .default(['%any'])
    .describe('Local addresses to accept IKE on (default %any).'),
  remoteAddrs: z
    .array(endpointSchema)
    .min(1)
    .default(['%any'])
    .describe('Peer addresses (default %any, for road warriors).'),
  proposals: z
    .array(proposalSchema)
    .min(1)
    .optional()
    .describe('IKE proposals (default: vpn.ike.proposals).'),
  local: strictObject({
    auth: z.enum(['pubkey', 'psk']).describe('How the gateway authenticates: pubkey (certificate) or psk.'),
    id: identitySchema.describe("The gateway's identity."),
    certificate: absolutePathSchema.optional().describe('Gateway certificate (PEM), required with pubkey.'),
    privateKey: absolutePathSchema
      .optional()
      .describe('Private key (PEM) of the certificate, read by the vpn service.'),
  }).describe('The gateway side.'),
  remote: strictObject({
    auth: z
      .enum(['pubkey', 'psk', 'eap-mschapv2', 'eap-tls'])
      .describe('How peers authenticate: pubkey, psk, eap-mschapv2 (user/password) or eap-tls.'),
    id: identitySchema.default('%any').describe('Peer identity (default %any).'),
    eapId: identitySchema.optional().describe('EAP identity to request ("%any" asks the client for it).'),
    caCertificates: uniqueList(absolutePathSchema, 'file')
      .optional()
      .describe('CA certificates (PEM) trusted for peer certificates.'),
  }).describe('The peer side.'),
  pools: oneOrMany(refSchema('a VPN pool', 'defined under vpn.pools'), 'a pool name')
    .optional()
    .describe('Virtual IP pools (vpn.pools) for road warriors; one per address family.'),
  zone: zoneRefSchema.default('vpn').describe('Zone the decrypted traffic enters (default vpn).'),
  mobike: z.boolean().default(true).describe('Allow MOBIKE address changes (default true).'),
  dpdDelay: durationSchema.optional().describe('Dead peer detection interval (default: vpn.ike.dpdDelay).'),
  children: z
    .record(nameSchema, vpnChildSchema)
    .refine((children) => Object.keys(children).length > 0, {
      message: 'a connection needs at least one child',
    })
    .describe('Child SAs by name.'),
}).meta({ title: 'VPN connection', description: 'An IKEv2 connection (road warrior or site to site).' });

export const vpnSchema = strictObject({
  ike: strictObject({
    proposals: z
      .array(proposalSchema)
      .min(1)
      .default(DEFAULT_IKE_PROPOSALS)
      .describe('Default IKE proposals.'),
    dpdDelay: durationSchema.default(30).describe('Default dead peer detection interval (default 30s).'),
    rekeyTime: durationSchema.default(14400).describe('IKE SA rekey interval (default 4h).'),
  })
    .prefault({})
    .describe('IKE defaults for every connection.'),
  pools: z.record(nameSchema, vpnPoolSchema).default({}).describe('Virtual IP pools by name.'),
  connections: z.record(nameSchema, vpnConnectionSchema).default({}).describe('Connections by name.'),
  secrets: strictObject({
    psk: z.array(pskSecretSchema).default([]).describe('Pre-shared keys.'),
    eap: z.array(eapSecretSchema).default([]).describe('EAP users.'),
  })
    .prefault({})
    .describe('Secrets; each entry has exactly one of secret or secretRef.'),
}).meta({ title: 'VPN', description: 'IPsec (IKEv2) remote access and site-to-site VPN.' });

export type SecretRef = z.output<typeof secretRefSchema>;
export type PskSecret = z.output<typeof pskSecretSchema>;
export type EapSecret = z.output<typeof eapSecretSchema>;
export type VpnPool = z.output<typeof vpnPoolSchema>;
export type VpnChild = z.output<typeof vpnChildSchema>;
export type VpnConnection = z.output<typeof vpnConnectionSchema>;
export type Vpn = z.output<typeof vpnSchema>;

/**
 * A three-namespace network of the firewall's own for its packet tests (never the lab's, so both can
 * be up at once): a client, the gateway (interfaces lan0 and wan0, as zones name them) and a server
 * side that has NO route back to the client network, so replies only arrive when the gateway NATs.
 *
 *   moat-fwt-lan [eth0 10.71.1.10] ── [lan0 10.71.1.1] moat-fwt-gw [wan0 10.71.2.1] ── [eth0 10.71.2.2] moat-fwt-wan
 *   moat-fwt-wan also owns 10.71.2.3 and 10.71.2.4 (one blocklisted in the tests, one not).
 */
import {
  addNamespace,
  addVethPair,
  deleteNamespace,
  ensureAddress,
  ensureRoute,
  listNamespaces,
  setLinkUp,
  setNamespaceSysctl,
} from '@moat/cli';

export const NS = { lan: 'moat-fwt-lan', gw: 'moat-fwt-gw', wan: 'moat-fwt-wan' } as const;

export const ADDR = {
  client: '10.71.1.10',
  gwLan: '10.71.1.1',
  gwWan: '10.71.2.1',
  server: '10.71.2.2',
  listed: '10.71.2.3',
  unlisted: '10.71.2.4',
} as const;

export async function removeTopology(): Promise<void> {
  const existing = await listNamespaces();
  for (const ns of Object.values(NS)) if (existing.includes(ns)) await deleteNamespace(ns);
}

export async function createTopology(): Promise<void> {
  await removeTopology();
  for (const ns of Object.values(NS)) {
    await addNamespace(ns);
    await setLinkUp(ns, 'lo');
  }
  await addVethPair(NS.lan, 'eth0', NS.gw, 'lan0');
  await addVethPair(NS.gw, 'wan0', NS.wan, 'eth0');
  await ensureAddress(NS.lan, 'eth0', `${ADDR.client}/24`);
  await ensureAddress(NS.gw, 'lan0', `${ADDR.gwLan}/24`);
  await ensureAddress(NS.gw, 'wan0', `${ADDR.gwWan}/24`);
  await ensureAddress(NS.wan, 'eth0', `${ADDR.server}/24`);
  await ensureAddress(NS.wan, 'lo', `${ADDR.listed}/32`);
  await ensureAddress(NS.wan, 'lo', `${ADDR.unlisted}/32`);
  for (const [ns, ifname] of [
    [NS.lan, 'eth0'],
    [NS.gw, 'lan0'],
    [NS.gw, 'wan0'],
    [NS.wan, 'eth0'],
  ] as const)
    await setLinkUp(ns, ifname);
  await ensureRoute(NS.lan, 'default', ADDR.gwLan);
  await setNamespaceSysctl(NS.gw, 'net.ipv4.ip_forward', '1');
}

/**
 * @peculiar/x509, ready to use: it needs the reflect-metadata polyfill loaded first and a WebCrypto
 * provider (Node's). Every Moat module that handles X.509 imports it from here (tls-mediation, the lab's test PKI).
 */
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export { x509 };
export type CryptoKey = webcrypto.CryptoKey;
export type CryptoKeyPair = webcrypto.CryptoKeyPair;
export const crypto = webcrypto;

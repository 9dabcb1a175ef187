/** The real av-scanner worker beside a test clamd, for the proxy's antivirus tests. */
export { type AvScannerProcess as AvScanner, startAvScanner } from '@moat/av-scanner/testing';

export { type ClamdAddress, formatClamdAddress, parseClamdAddress } from './address.js';
export {
  ClamdClient,
  type ClamdClientOptions,
  ClamdError,
  type ClamdErrorKind,
  parseScanReply,
  type ScanOutcome,
} from './client.js';
export { type ClamdConfigOptions, renderClamdConfig } from './config.js';
export {
  announceBuildTime,
  type DatabaseFile,
  databaseFingerprint,
  readSignatureDatabase,
  type SignatureDatabase,
  SignatureDatabaseError,
} from './database.js';
export { encryptedZip, infectedSamples, type Sample } from './samples.js';
export { EICAR, TEST_SAMPLES, testSignatureFiles, writeTestSignatures } from './signatures.js';

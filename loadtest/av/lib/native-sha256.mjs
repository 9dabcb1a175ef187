// Preload (node --import) for the bench's --nats-native-sha256 experiment: switches the NATS object
// store's SHA-256 (computed on every put and verified on every get) from its default pure-JS
// implementation to node:crypto, in the proxy and av-scanner processes, without touching Moat's code.
// Moat resolves the same hoisted @nats-io/obj, so this is the instance its object store uses.
import { setSha256Backend } from '@nats-io/obj';

setSha256Backend('native');

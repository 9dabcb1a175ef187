export { CliError, ControlGateway, resolveAddress } from './client.js';
export { buildProgram, type Io } from './program.js';

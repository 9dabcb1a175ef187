import { existsSync } from 'node:fs';
import { credentials, Metadata, type ServiceError, status } from '@grpc/grpc-js';
import { controlV1 as pb } from '@moat/proto';

/** Where the lab's control service listens, reachable from the host through the filesystem. */
export const LAB_SOCKET = '/run/moat-lab/control.sock';
export const DEFAULT_ADDR = '127.0.0.1:50051';

/** --addr, then MOAT_CONTROL_ADDR, then the lab's socket when a lab is up, then the local default. */
export function resolveAddress(flag: string | undefined, env = process.env): string {
  if (flag) return flag;
  if (env.MOAT_CONTROL_ADDR) return env.MOAT_CONTROL_ADDR;
  if (existsSync(LAB_SOCKET)) return `unix://${LAB_SOCKET}`;
  return DEFAULT_ADDR;
}

/** A failure the user can act on; main prints the message and exits with `exitCode`. */
export class CliError extends Error {
  override name = 'CliError';
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

function explain(err: ServiceError, addr: string): CliError {
  if (err.code === status.UNAVAILABLE || err.code === status.DEADLINE_EXCEEDED) {
    return new CliError(
      `cannot reach the control service at ${addr} (${err.details || err.message}).\n` +
        'Is Moat running? Start it with `moat dev` or `sudo moat lab up`, or point moatctl at it with --addr or MOAT_CONTROL_ADDR.',
      69,
    );
  }
  // a service that is not running, a policy that cannot be applied: the message says what to do
  if (err.code === status.FAILED_PRECONDITION || err.code === status.INVALID_ARGUMENT)
    return new CliError(err.details, 1);
  if (err.code === status.NOT_FOUND)
    return new CliError(`${err.details}; list versions with \`moatctl history\``, 1);
  return new CliError(`control refused the call: ${err.details || err.message}`, 1);
}

type Unary<Req, Res> = (
  req: Req,
  md: Metadata,
  opts: { deadline: Date },
  cb: (err: ServiceError | null, res: Res) => void,
) => unknown;

/** Promise-returning gateway to the control API. */
export class ControlGateway {
  private readonly client: pb.ControlServiceClient;

  constructor(
    readonly address: string,
    private readonly timeoutMs = 10_000,
  ) {
    this.client = new pb.ControlServiceClient(address, credentials.createInsecure());
  }

  private call<Req, Res>(method: Unary<Req, Res>, req: Req, extraMs = 0): Promise<Res> {
    return new Promise((resolve, reject) => {
      method.call(
        this.client,
        req,
        new Metadata(),
        { deadline: new Date(Date.now() + this.timeoutMs + extraMs) },
        (err, res) => (err ? reject(explain(err, this.address)) : resolve(res)),
      );
    });
  }

  apply = (req: pb.ApplyRequest) => this.call<pb.ApplyRequest, pb.ApplyResponse>(this.client.apply, req);
  get = (version: number) => this.call<pb.GetRequest, pb.GetResponse>(this.client.get, { version });
  diff = (fromVersion: number, toVersion: number) =>
    this.call<pb.DiffRequest, pb.DiffResponse>(this.client.diff, { fromVersion, toVersion });
  history = (limit: number) =>
    this.call<pb.HistoryRequest, pb.HistoryResponse>(this.client.history, { limit });
  rollback = (req: pb.RollbackRequest) =>
    this.call<pb.RollbackRequest, pb.ApplyResponse>(this.client.rollback, req);
  status = (waitMs: number) =>
    this.call<pb.StatusRequest, pb.StatusResponse>(this.client.status, { waitMs }, waitMs);

  query = (service: string, query: string, args: Record<string, unknown>, waitMs: number) =>
    this.call<pb.QueryRequest, pb.QueryResponse>(
      this.client.query,
      { service, query, argsJson: JSON.stringify(args), waitMs },
      waitMs,
    );

  close() {
    this.client.close();
  }
}

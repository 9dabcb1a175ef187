import {
  type handleUnaryCall,
  Server,
  type ServerUnaryCall,
  type sendUnaryData,
  status,
} from '@grpc/grpc-js';
import type { Logger } from '@moat/log';
import { PolicyNotFoundError, PolicyValidationError, type PolicyVersionInfo } from '@moat/policy';
import { controlV1 as pb } from '@moat/proto';
import { attr, contextFromGrpcMetadata, withSpan } from '@moat/telemetry';
import { SpanKind } from '@opentelemetry/api';
import { HealthImplementation } from 'grpc-health-check';
import { type ApplyOutcome, type ControlApi, QueryInvalidError, QueryUnansweredError } from './api.js';
import type { InstanceView } from './status.js';

const outcomes = {
  applied: pb.ApplyResponse_Outcome.OUTCOME_APPLIED,
  unchanged: pb.ApplyResponse_Outcome.OUTCOME_UNCHANGED,
  rejected: pb.ApplyResponse_Outcome.OUTCOME_REJECTED,
  valid: pb.ApplyResponse_Outcome.OUTCOME_VALID,
} as const;

const toVersionInfo = (i: PolicyVersionInfo): pb.VersionInfo => ({
  version: i.version,
  sha256: i.sha256,
  createdAt: i.createdAt,
  author: i.author,
  comment: i.comment,
  rolledBackFrom: i.rolledBackFrom ?? 0,
});

const toApplyResponse = (o: ApplyOutcome): pb.ApplyResponse => ({
  outcome: outcomes[o.outcome],
  violations:
    o.outcome === 'rejected'
      ? o.violations.map((v) => ({
          path: v.path,
          message: v.message,
          line: v.line ?? 0,
          column: v.column ?? 0,
        }))
      : [],
  version: o.info ? toVersionInfo(o.info) : undefined,
});

const toInstance = (v: InstanceView): pb.ServiceInstanceStatus => {
  const s = v.status;
  const applied = s?.policy.applied;
  return {
    service: v.service,
    instance: v.instance,
    version: s?.version ?? '',
    healthy: s?.healthy ?? false,
    ready: s?.ready ?? false,
    reachable: v.reachable,
    policyVersion: applied?.version ?? 0,
    policyCreatedAt: applied?.createdAt ?? '',
    policyAppliedAt: applied?.appliedAt ?? '',
    policyLatencyMs: Math.round(applied?.latencyMs ?? 0),
    lagging: v.lagging,
    failedVersion: s?.policy.failed?.version ?? 0,
    failedError: s?.policy.failed?.error ?? '',
    startedAt: s?.startedAt ?? '',
    checks: s?.checks ?? {},
    detailsJson: s?.details ? JSON.stringify(s.details) : '',
  };
};

function parseArgs(json: string): Record<string, unknown> {
  if (json === '') return {};
  let args: unknown;
  try {
    args = JSON.parse(json);
  } catch (err) {
    throw new QueryInvalidError(`args_json is not JSON: ${(err as Error).message}`);
  }
  if (args === null || typeof args !== 'object' || Array.isArray(args)) {
    throw new QueryInvalidError('args_json must be a JSON object');
  }
  return args as Record<string, unknown>;
}

/** Maps domain errors to gRPC status codes; anything unexpected is INTERNAL and logged. */
function toGrpcError(err: unknown, log: Logger) {
  if (err instanceof PolicyNotFoundError) return { code: status.NOT_FOUND, details: err.message };
  if (err instanceof PolicyValidationError) return { code: status.FAILED_PRECONDITION, details: err.message };
  if (err instanceof QueryInvalidError) return { code: status.INVALID_ARGUMENT, details: err.message };
  if (err instanceof QueryUnansweredError) return { code: status.FAILED_PRECONDITION, details: err.message };
  log.error({ err }, 'control call failed');
  return { code: status.INTERNAL, details: `internal error: ${(err as Error).message}` };
}

/** Wraps a handler: a server span joined to the caller's trace, and error mapping. */
function unary<Req, Res>(
  name: string,
  log: Logger,
  fn: (req: Req) => Promise<Res>,
): handleUnaryCall<Req, Res> {
  return (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => {
    withSpan(
      `moat.control.v1.ControlService/${name}`,
      {
        kind: SpanKind.SERVER,
        parent: contextFromGrpcMetadata(call.metadata),
        attributes: { [attr.service]: 'control' },
      },
      () => fn(call.request),
    ).then(
      (res) => callback(null, res),
      (err: unknown) => callback(toGrpcError(err, log)),
    );
  };
}

export interface ControlServer {
  server: Server;
  health: HealthImplementation;
}

/** Builds the gRPC server (control API + grpc.health.v1). Does not bind: main.ts does. */
export function createControlServer(api: ControlApi, log: Logger): ControlServer {
  const server = new Server();
  const impl: pb.ControlServiceServer = {
    apply: unary('Apply', log, async (req: pb.ApplyRequest) =>
      toApplyResponse(
        await api.apply({
          document: req.document,
          sourceName: req.sourceName,
          author: req.author,
          comment: req.comment,
          dryRun: req.dryRun,
        }),
      ),
    ),
    rollback: unary('Rollback', log, async (req: pb.RollbackRequest) =>
      toApplyResponse(await api.rollback(req.version, req.author, req.comment)),
    ),
    get: unary('Get', log, async (req: pb.GetRequest) => {
      const r = await api.get(req.version);
      return { version: toVersionInfo(r), policyJson: JSON.stringify(r.policy), source: r.source ?? '' };
    }),
    diff: unary('Diff', log, async (req: pb.DiffRequest) => ({
      changes: (await api.diff(req.fromVersion, req.toVersion)).map((c) => ({
        path: c.path,
        kind: c.kind,
        beforeJson: c.before === undefined ? '' : JSON.stringify(c.before),
        afterJson: c.after === undefined ? '' : JSON.stringify(c.after),
      })),
    })),
    history: unary('History', log, async (req: pb.HistoryRequest) => {
      const h = await api.history(req.limit);
      return { versions: h.versions.map(toVersionInfo), currentVersion: h.current };
    }),
    status: unary('Status', log, async (req: pb.StatusRequest) => {
      const s = await api.status(req.waitMs);
      return { currentVersion: s.current, services: s.instances.map(toInstance) };
    }),
    query: unary('Query', log, async (req: pb.QueryRequest) => {
      const answers = await api.query(req.service, req.query, parseArgs(req.argsJson), req.waitMs);
      return {
        answers: answers.map((a) => ({
          service: a.service,
          instance: a.instance,
          ok: a.ok,
          resultJson: a.ok ? JSON.stringify(a.result) : '',
          error: a.ok ? '' : a.error,
        })),
      };
    }),
  };
  server.addService(pb.ControlServiceService, impl);
  const health = new HealthImplementation({ '': 'SERVING', 'moat.control.v1.ControlService': 'SERVING' });
  health.addToServer(server);
  return { server, health };
}

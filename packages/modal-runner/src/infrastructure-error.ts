/**
 * Telling Modal's failures (no GPU, a lost sandbox, a flaky connection) from the
 * experiment's own: the former are retried and reported with `failureKind:
 * "infrastructure"`, never as the experiment's non-zero exit.
 */
import {
  ClientClosedError,
  ConflictError,
  InternalFailure,
  InvalidError,
  NotFoundError,
  ResourceExhaustedError,
  SandboxTimeoutError,
  TimeoutError,
} from "modal";
import { ClientError, Status } from "nice-grpc";

/** A failure of the machine or the platform, not of the experiment. */
export class InfrastructureError extends Error {
  override name = "InfrastructureError";
  /** Whether trying again on a fresh sandbox may help. */
  readonly retryable: boolean;

  constructor(message: string, options: { retryable: boolean; cause?: unknown }) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.retryable = options.retryable;
  }
}

const RETRYABLE_CODES = new Set<Status>([
  Status.UNAVAILABLE,
  Status.RESOURCE_EXHAUSTED,
  Status.DEADLINE_EXCEEDED,
  Status.INTERNAL,
  Status.UNKNOWN,
  Status.ABORTED,
  Status.CANCELLED,
  Status.NOT_FOUND,
]);

/** What went wrong, in words, and whether a retry may help. */
export interface InfrastructureFailure {
  message: string;
  retryable: boolean;
}

/** Describes an error thrown while preparing, running or reading back a sandbox. */
export function describeInfrastructureFailure(error: unknown): InfrastructureFailure {
  if (error instanceof InfrastructureError)
    return { message: error.message, retryable: error.retryable };
  if (error instanceof ResourceExhaustedError) {
    return {
      message: `no machine with the requested GPU became available (${error.message})`,
      retryable: true,
    };
  }
  if (error instanceof ClientError) {
    if (error.code === Status.RESOURCE_EXHAUSTED) {
      return {
        message: `Modal has no capacity for this sandbox right now (${error.details})`,
        retryable: true,
      };
    }
    if (error.code === Status.UNAUTHENTICATED || error.code === Status.PERMISSION_DENIED) {
      return {
        message: `Modal refused the credentials (${error.details}); check MODAL_TOKEN_ID / MODAL_TOKEN_SECRET or run \`modal token new\``,
        retryable: false,
      };
    }
    return {
      message: `Modal call ${error.path} failed with ${Status[error.code]}: ${error.details}`,
      retryable: RETRYABLE_CODES.has(error.code),
    };
  }
  if (error instanceof NotFoundError)
    return { message: `the sandbox is gone (${error.message})`, retryable: true };
  if (error instanceof ConflictError) {
    return { message: `the sandbox ended before it started (${error.message})`, retryable: true };
  }
  if (
    error instanceof ClientClosedError ||
    error instanceof TimeoutError ||
    error instanceof SandboxTimeoutError ||
    error instanceof InternalFailure
  ) {
    return { message: `${error.name}: ${error.message}`, retryable: true };
  }
  if (error instanceof InvalidError)
    return { message: `Modal refused the request: ${error.message}`, retryable: false };
  if (error instanceof Error) return { message: error.message, retryable: false };
  return { message: String(error), retryable: false };
}

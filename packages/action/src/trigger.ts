/**
 * What started the job, and whether it is a command at all. Anything that is not one
 * (an edited comment, a comment on an issue, a bot, a comment not starting with
 * `/sweep`) is ignored before any API call.
 */
import { parseSweepCommand, type SweepCommand } from "./command.ts";
import type { ActionInputs } from "./inputs.ts";
import { InputError } from "./inputs.ts";

export type Trigger =
  | { kind: "ignore"; reason: string }
  | { kind: "comment"; actor: string; commentId: number; prNumber: number; command: SweepCommand }
  | { kind: "pull_request"; actor: string; prNumber: number; command: SweepCommand }
  | { kind: "dispatch"; actor: string; command: SweepCommand };

interface User {
  login?: string;
  type?: string;
}

function isBot(user: User | undefined): boolean {
  return user?.type === "Bot" || (user?.login ?? "").endsWith("[bot]");
}

function commandFromInputs(inputs: ActionInputs, event: string): SweepCommand {
  if (!inputs.stage) {
    throw new InputError(
      `[action] the ${event} event needs the input stage (the name of a file in ${inputs.stagesDir}/)`,
    );
  }
  return {
    kind: "run",
    stage: inputs.stage,
    overrides: inputs.overrides,
    isDryRun: inputs.dryRun,
    isFresh: inputs.fresh,
  };
}

export interface EventContext {
  eventName: string;
  actor: string;
  payload: object;
}

/** Reads the event the workflow was started by. */
export function readTrigger(context: EventContext, inputs: ActionInputs): Trigger {
  const payload = context.payload as Record<string, unknown> & {
    action?: string;
    sender?: User;
    comment?: { id?: number; body?: string; user?: User };
    issue?: { number?: number; pull_request?: unknown };
    pull_request?: { number?: number };
  };
  const sender = payload.sender?.login ?? context.actor;
  switch (context.eventName) {
    case "issue_comment": {
      if (payload.action !== "created")
        return {
          kind: "ignore",
          reason: `the comment was ${payload.action ?? "changed"}, not created`,
        };
      if (!payload.issue?.pull_request)
        return { kind: "ignore", reason: "the comment is on an issue, not a pull request" };
      const comment = payload.comment;
      if (!comment?.id || typeof payload.issue.number !== "number")
        return { kind: "ignore", reason: "the event has no comment" };
      if (isBot(comment.user))
        return { kind: "ignore", reason: `the comment is by the bot ${comment.user?.login ?? ""}` };
      const command = parseSweepCommand(comment.body ?? "");
      if (command === null)
        return { kind: "ignore", reason: "the comment is not a /sweep command" };
      return {
        kind: "comment",
        actor: comment.user?.login ?? sender,
        commentId: comment.id,
        prNumber: payload.issue.number,
        command,
      };
    }
    case "pull_request":
    case "pull_request_target": {
      if (typeof payload.pull_request?.number !== "number")
        return { kind: "ignore", reason: "the event has no pull request" };
      if (isBot(payload.sender))
        return { kind: "ignore", reason: `the event was sent by the bot ${sender}` };
      return {
        kind: "pull_request",
        actor: sender,
        prNumber: payload.pull_request.number,
        command: commandFromInputs(inputs, context.eventName),
      };
    }
    case "workflow_dispatch":
      return {
        kind: "dispatch",
        actor: sender,
        command: commandFromInputs(inputs, context.eventName),
      };
    default:
      return {
        kind: "ignore",
        reason: `the action does not handle ${context.eventName} events (use issue_comment, pull_request or workflow_dispatch)`,
      };
  }
}

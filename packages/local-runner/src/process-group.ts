import { readdirSync, readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";

const hasProc = process.platform === "linux";

/**
 * Sends `signal` to every process of group `pgid`; false when the group is gone.
 * Windows has no process groups: there only the leader gets it.
 */
export function signalGroup(pgid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(process.platform === "win32" ? pgid : -pgid, signal);
    return true;
  } catch {
    return false;
  }
}

/**
 * Pids of the processes of group `pgid` that are still running (zombies, which no signal
 * can end, do not count). Uses /proc on Linux; elsewhere it can only tell whether any
 * member exists, and answers `[pgid]` for "some".
 */
export function groupMembers(pgid: number): number[] {
  try {
    process.kill(-pgid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ESRCH") return [];
  }
  if (!hasProc) return [pgid];
  const members: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, "utf8");
    } catch {
      continue; // the process ended while we looked
    }
    // "pid (comm) state ppid pgrp …": comm may hold spaces and parentheses, so split after the last ")".
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (Number(fields[2]) === pgid && fields[0] !== "Z" && fields[0] !== "X") members.push(Number(entry));
  }
  return members;
}

/**
 * Ends what is left of process group `pgid`: SIGTERM, then SIGKILL once `deadlineMs`
 * (a `Date.now()` time) has passed, then waits (up to 5 s more) until no member runs.
 */
export async function endGroup(pgid: number, deadlineMs: number): Promise<void> {
  if (groupMembers(pgid).length === 0) return;
  signalGroup(pgid, "SIGTERM");
  while (Date.now() < deadlineMs) {
    await sleep(Math.min(50, Math.max(1, deadlineMs - Date.now())));
    if (groupMembers(pgid).length === 0) return;
  }
  const giveUpMs = Date.now() + 5000;
  while (groupMembers(pgid).length > 0 && Date.now() < giveUpMs) {
    signalGroup(pgid, "SIGKILL");
    await sleep(20);
  }
}

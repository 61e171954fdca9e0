import { randomUUID } from 'node:crypto';
import { errorCodes } from './errors.js';

/**
 * Kafka's classic group membership protocol (JoinGroup / SyncGroup / Heartbeat / LeaveGroup), as
 * the broker-side coordinator runs it: generations, member ids, a leader that computes the
 * assignment client-side (range, cooperative-sticky, whatever the members' protocols say), which
 * the coordinator only relays. Offsets are not kept here: OffsetCommit writes the platform's own
 * committed offsets through the `Log`, so `tributary status` shows a Kafka group's lag.
 *
 * States (as in Kafka): Empty → PreparingRebalance (joins are collected until every known member
 * has rejoined or the rebalance timeout passed) → CompletingRebalance (join answered, waiting for
 * the leader's SyncGroup) → Stable. A member that joins, leaves, or misses its session timeout
 * starts a new rebalance. Static membership (group.instance.id) is accepted but treated as dynamic.
 */

export interface JoinRequest {
  groupId: string;
  memberId: string;
  groupInstanceId: string | null;
  clientId: string;
  clientHost: string;
  sessionTimeoutMs: number;
  rebalanceTimeoutMs: number;
  protocolType: string;
  protocols: { name: string; metadata: Buffer }[];
  /** JoinGroup v4+: a new member first gets MEMBER_ID_REQUIRED with its id (KIP-394). */
  requireKnownMemberId: boolean;
}

export interface JoinResult {
  errorCode: number;
  generationId: number;
  protocolType: string | null;
  protocolName: string | null;
  leader: string;
  memberId: string;
  members: { memberId: string; groupInstanceId: string | null; metadata: Buffer }[];
}

export interface SyncResult {
  errorCode: number;
  protocolType: string | null;
  protocolName: string | null;
  assignment: Buffer;
}

interface Member {
  memberId: string;
  groupInstanceId: string | null;
  clientId: string;
  clientHost: string;
  sessionTimeoutMs: number;
  rebalanceTimeoutMs: number;
  protocols: { name: string; metadata: Buffer }[];
  lastHeardMs: number;
  join: ((result: JoinResult) => void) | undefined;
  sync: ((result: SyncResult) => void) | undefined;
  assignment: Buffer;
}

type GroupState = 'Empty' | 'PreparingRebalance' | 'CompletingRebalance' | 'Stable';

class Group {
  readonly id: string;
  state: GroupState = 'Empty';
  generation = 0;
  protocolType: string | null = null;
  protocolName: string | null = null;
  leader = '';
  readonly members = new Map<string, Member>();
  rebalanceTimer: NodeJS.Timeout | undefined;
  /** The first rebalance of an empty group waits out the initial delay instead of completing early. */
  initialDelay = false;
  constructor(id: string) {
    this.id = id;
  }
}

export interface GroupSummary {
  groupId: string;
  state: GroupState;
  protocolType: string;
  protocolName: string;
  members: {
    memberId: string;
    clientId: string;
    clientHost: string;
    groupInstanceId: string | null;
    assignment: Buffer;
    metadata: Buffer;
  }[];
}

const emptyBuffer = Buffer.alloc(0);

export class GroupCoordinator {
  readonly #groups = new Map<string, Group>();
  readonly #sweep: NodeJS.Timeout;
  /** The delay before the first rebalance of an empty group completes, so members starting together join one generation. */
  readonly #initialDelayMs: number;

  constructor(options: { initialRebalanceDelayMs?: number; sweepMs?: number } = {}) {
    this.#initialDelayMs = options.initialRebalanceDelayMs ?? 300;
    this.#sweep = setInterval(() => this.#expire(), options.sweepMs ?? 250);
    this.#sweep.unref();
  }

  close(): void {
    clearInterval(this.#sweep);
    for (const group of this.#groups.values()) {
      clearTimeout(group.rebalanceTimer);
      for (const member of group.members.values()) {
        member.join?.(this.#joinError(errorCodes.COORDINATOR_NOT_AVAILABLE, member.memberId));
        member.sync?.({
          errorCode: errorCodes.COORDINATOR_NOT_AVAILABLE,
          protocolType: null,
          protocolName: null,
          assignment: emptyBuffer,
        });
      }
    }
    this.#groups.clear();
  }

  groupIds(): string[] {
    return [...this.#groups.values()].filter((g) => g.members.size > 0).map((g) => g.id);
  }

  describe(groupId: string): GroupSummary | undefined {
    const group = this.#groups.get(groupId);
    if (group === undefined) return undefined;
    return {
      groupId,
      state: group.state,
      protocolType: group.protocolType ?? '',
      protocolName: group.protocolName ?? '',
      members: [...group.members.values()].map((m) => ({
        memberId: m.memberId,
        clientId: m.clientId,
        clientHost: m.clientHost,
        groupInstanceId: m.groupInstanceId,
        assignment: m.assignment,
        metadata: m.protocols.find((p) => p.name === group.protocolName)?.metadata ?? emptyBuffer,
      })),
    };
  }

  #joinError(errorCode: number, memberId: string): JoinResult {
    return {
      errorCode,
      generationId: -1,
      protocolType: null,
      protocolName: null,
      leader: '',
      memberId,
      members: [],
    };
  }

  join(request: JoinRequest): Promise<JoinResult> {
    let group = this.#groups.get(request.groupId);
    if (group === undefined) this.#groups.set(request.groupId, (group = new Group(request.groupId)));
    if (request.protocols.length === 0)
      return Promise.resolve(this.#joinError(errorCodes.INCONSISTENT_GROUP_PROTOCOL, request.memberId));
    if (
      group.members.size > 0 &&
      group.protocolType !== null &&
      group.protocolType !== request.protocolType
    ) {
      return Promise.resolve(this.#joinError(errorCodes.INCONSISTENT_GROUP_PROTOCOL, request.memberId));
    }
    let memberId = request.memberId;
    if (memberId === '') {
      memberId = `${request.clientId || 'member'}-${randomUUID()}`;
      if (request.requireKnownMemberId) {
        // KIP-394: the id is handed out first; the member joins with it (and is then known).
        group.members.set(memberId, this.#newMember(memberId, request));
        return Promise.resolve(this.#joinError(errorCodes.MEMBER_ID_REQUIRED, memberId));
      }
    } else if (!group.members.has(memberId)) {
      return Promise.resolve(this.#joinError(errorCodes.UNKNOWN_MEMBER_ID, memberId));
    }
    const member = group.members.get(memberId) ?? this.#newMember(memberId, request);
    member.protocols = request.protocols;
    member.sessionTimeoutMs = request.sessionTimeoutMs;
    member.rebalanceTimeoutMs = request.rebalanceTimeoutMs;
    member.lastHeardMs = Date.now();
    group.members.set(memberId, member);
    group.protocolType ??= request.protocolType;
    const result = new Promise<JoinResult>((resolve) => {
      member.join?.(this.#joinError(errorCodes.UNKNOWN_MEMBER_ID, memberId));
      member.join = resolve;
    });
    // Every join starts (or joins) a rebalance: clients rejoin only when they want a new
    // generation (new subscription, a rebalance they saw in a heartbeat, or a restart).
    this.#prepareRebalance(group);
    this.#maybeCompleteJoin(group);
    return result;
  }

  #newMember(memberId: string, request: JoinRequest): Member {
    return {
      memberId,
      groupInstanceId: request.groupInstanceId,
      clientId: request.clientId,
      clientHost: request.clientHost,
      sessionTimeoutMs: request.sessionTimeoutMs,
      rebalanceTimeoutMs: request.rebalanceTimeoutMs,
      protocols: request.protocols,
      lastHeardMs: Date.now(),
      join: undefined,
      sync: undefined,
      assignment: emptyBuffer,
    };
  }

  #prepareRebalance(group: Group): void {
    if (group.state === 'PreparingRebalance') return;
    const wasEmpty = group.state === 'Empty';
    group.state = 'PreparingRebalance';
    // Members waiting for their assignment learn that a new generation is coming.
    for (const member of group.members.values()) {
      member.sync?.({
        errorCode: errorCodes.REBALANCE_IN_PROGRESS,
        protocolType: null,
        protocolName: null,
        assignment: emptyBuffer,
      });
      member.sync = undefined;
    }
    let timeoutMs = 0;
    for (const member of group.members.values()) timeoutMs = Math.max(timeoutMs, member.rebalanceTimeoutMs);
    clearTimeout(group.rebalanceTimer);
    const delayMs = wasEmpty ? Math.min(this.#initialDelayMs, timeoutMs) : timeoutMs;
    group.rebalanceTimer = setTimeout(() => this.#completeJoin(group, true), delayMs);
    group.rebalanceTimer.unref();
    group.initialDelay = wasEmpty;
  }

  #maybeCompleteJoin(group: Group): void {
    if (group.state !== 'PreparingRebalance') return;
    if (group.initialDelay) return; // the timer completes it
    for (const member of group.members.values()) if (member.join === undefined) return;
    this.#completeJoin(group, false);
  }

  /** Answers every pending join with the new generation; members that did not rejoin are dropped. */
  #completeJoin(group: Group, timedOut: boolean): void {
    if (group.state !== 'PreparingRebalance') return;
    clearTimeout(group.rebalanceTimer);
    group.rebalanceTimer = undefined;
    group.initialDelay = false;
    if (timedOut) {
      for (const [id, member] of group.members) if (member.join === undefined) group.members.delete(id);
    } else {
      for (const member of group.members.values()) if (member.join === undefined) return;
    }
    group.generation++;
    if (group.members.size === 0) {
      group.state = 'Empty';
      group.protocolName = null;
      group.protocolType = null;
      group.leader = '';
      return;
    }
    const members = [...group.members.values()];
    group.protocolName = chooseProtocol(members);
    if (!group.members.has(group.leader)) group.leader = members[0].memberId;
    group.state = 'CompletingRebalance';
    for (const member of members) {
      member.assignment = emptyBuffer;
      member.lastHeardMs = Date.now();
      const isLeader = member.memberId === group.leader;
      const resolve = member.join!;
      member.join = undefined;
      resolve({
        errorCode: errorCodes.NONE,
        generationId: group.generation,
        protocolType: group.protocolType,
        protocolName: group.protocolName,
        leader: group.leader,
        memberId: member.memberId,
        members: isLeader
          ? members.map((m) => ({
              memberId: m.memberId,
              groupInstanceId: m.groupInstanceId,
              metadata: m.protocols.find((p) => p.name === group.protocolName)?.metadata ?? emptyBuffer,
            }))
          : [],
      });
    }
  }

  sync(request: {
    groupId: string;
    generationId: number;
    memberId: string;
    assignments: { memberId: string; assignment: Buffer }[];
  }): Promise<SyncResult> {
    const fail = (errorCode: number): Promise<SyncResult> =>
      Promise.resolve({ errorCode, protocolType: null, protocolName: null, assignment: emptyBuffer });
    const group = this.#groups.get(request.groupId);
    const member = group?.members.get(request.memberId);
    if (group === undefined || member === undefined) return fail(errorCodes.UNKNOWN_MEMBER_ID);
    if (request.generationId !== group.generation) return fail(errorCodes.ILLEGAL_GENERATION);
    member.lastHeardMs = Date.now();
    if (group.state === 'PreparingRebalance') return fail(errorCodes.REBALANCE_IN_PROGRESS);
    const ok = (m: Member): SyncResult => ({
      errorCode: errorCodes.NONE,
      protocolType: group.protocolType,
      protocolName: group.protocolName,
      assignment: m.assignment,
    });
    if (group.state === 'Stable') return Promise.resolve(ok(member));
    const result = new Promise<SyncResult>((resolve) => {
      member.sync = resolve;
    });
    if (request.memberId === group.leader) {
      for (const m of group.members.values()) m.assignment = emptyBuffer;
      for (const a of request.assignments) {
        const target = group.members.get(a.memberId);
        if (target !== undefined) target.assignment = a.assignment;
      }
      group.state = 'Stable';
      for (const m of group.members.values()) {
        const resolve = m.sync;
        m.sync = undefined;
        resolve?.(ok(m));
      }
    }
    return result;
  }

  heartbeat(request: { groupId: string; generationId: number; memberId: string }): number {
    const group = this.#groups.get(request.groupId);
    const member = group?.members.get(request.memberId);
    if (group === undefined || member === undefined) return errorCodes.UNKNOWN_MEMBER_ID;
    member.lastHeardMs = Date.now();
    if (request.generationId !== group.generation) return errorCodes.ILLEGAL_GENERATION;
    if (group.state === 'PreparingRebalance') return errorCodes.REBALANCE_IN_PROGRESS;
    return errorCodes.NONE;
  }

  /** Removes a member (LeaveGroup) and rebalances the rest. */
  leave(groupId: string, memberId: string): number {
    const group = this.#groups.get(groupId);
    const member = group?.members.get(memberId);
    if (group === undefined || member === undefined) return errorCodes.UNKNOWN_MEMBER_ID;
    this.#remove(group, member);
    return errorCodes.NONE;
  }

  /** Whether an OffsetCommit with this generation and member may write (-1: not a group member). */
  checkCommit(groupId: string, generationId: number, memberId: string): number {
    if (generationId < 0) return errorCodes.NONE;
    const group = this.#groups.get(groupId);
    if (group === undefined || group.members.size === 0) return errorCodes.NONE;
    const member = group.members.get(memberId);
    if (member === undefined) return errorCodes.UNKNOWN_MEMBER_ID;
    member.lastHeardMs = Date.now();
    if (generationId !== group.generation) return errorCodes.ILLEGAL_GENERATION;
    if (group.state === 'PreparingRebalance' || group.state === 'CompletingRebalance')
      return errorCodes.REBALANCE_IN_PROGRESS;
    return errorCodes.NONE;
  }

  #remove(group: Group, member: Member): void {
    group.members.delete(member.memberId);
    member.join?.(this.#joinError(errorCodes.UNKNOWN_MEMBER_ID, member.memberId));
    member.sync?.({
      errorCode: errorCodes.UNKNOWN_MEMBER_ID,
      protocolType: null,
      protocolName: null,
      assignment: emptyBuffer,
    });
    member.join = undefined;
    member.sync = undefined;
    if (group.members.size === 0) {
      clearTimeout(group.rebalanceTimer);
      group.rebalanceTimer = undefined;
      group.state = 'Empty';
      group.generation++;
      group.protocolName = null;
      group.protocolType = null;
      group.leader = '';
      return;
    }
    this.#prepareRebalance(group);
    this.#maybeCompleteJoin(group);
  }

  /** Members silent for longer than their session timeout leave (not while they wait in a join). */
  #expire(): void {
    const now = Date.now();
    for (const group of this.#groups.values()) {
      for (const member of [...group.members.values()]) {
        if (member.join !== undefined) continue;
        if (now - member.lastHeardMs > member.sessionTimeoutMs) this.#remove(group, member);
      }
    }
  }
}

/** The first protocol of the first member that every member supports (Kafka votes; members of one client agree). */
function chooseProtocol(members: Member[]): string {
  for (const candidate of members[0].protocols) {
    if (members.every((m) => m.protocols.some((p) => p.name === candidate.name))) return candidate.name;
  }
  return members[0].protocols[0]?.name ?? '';
}

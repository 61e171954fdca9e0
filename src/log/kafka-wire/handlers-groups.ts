import type { Handler } from './handlers.js';
import { errorCodes } from './errors.js';
import type { Message } from './schema.js';

/** The coordinator of every group is this broker (node 0), reached the way the client reached us. */
export const findCoordinator: Handler = (request, version, _state, session) => {
  const keyType = request.keyType as number;
  // Transactions are not supported, so there is no transaction coordinator.
  const errorCode = keyType === 0 ? errorCodes.NONE : errorCodes.COORDINATOR_NOT_AVAILABLE;
  const node =
    errorCode === 0
      ? { nodeId: 0, host: session.host, port: session.port }
      : { nodeId: -1, host: '', port: -1 };
  if (version < 4) return { throttleTimeMs: 0, errorCode, errorMessage: null, ...node };
  return {
    throttleTimeMs: 0,
    coordinators: (request.coordinatorKeys as string[]).map((key) => ({
      key,
      ...node,
      errorCode,
      errorMessage: null,
    })),
  };
};

export const joinGroup: Handler = async (request, version, state, session) => {
  const sessionTimeoutMs = request.sessionTimeoutMs as number;
  const rebalanceTimeoutMs = request.rebalanceTimeoutMs as number;
  const result = await state.groups.join({
    groupId: request.groupId as string,
    memberId: request.memberId as string,
    groupInstanceId: (request.groupInstanceId as string | null) ?? null,
    clientId: session.clientId,
    clientHost: session.clientHost,
    sessionTimeoutMs,
    rebalanceTimeoutMs: rebalanceTimeoutMs > 0 ? rebalanceTimeoutMs : sessionTimeoutMs,
    protocolType: request.protocolType as string,
    protocols: request.protocols as { name: string; metadata: Buffer }[],
    requireKnownMemberId: version >= 4,
  });
  return { throttleTimeMs: 0, skipAssignment: false, ...result };
};

export const syncGroup: Handler = async (request, _version, state) => {
  const result = await state.groups.sync({
    groupId: request.groupId as string,
    generationId: request.generationId as number,
    memberId: request.memberId as string,
    assignments: request.assignments as { memberId: string; assignment: Buffer }[],
  });
  return { throttleTimeMs: 0, ...result };
};

export const heartbeat: Handler = (request, _version, state) => ({
  throttleTimeMs: 0,
  errorCode: state.groups.heartbeat({
    groupId: request.groupId as string,
    generationId: request.generationId as number,
    memberId: request.memberId as string,
  }),
});

export const leaveGroup: Handler = (request, version, state) => {
  const groupId = request.groupId as string;
  if (version < 3)
    return { throttleTimeMs: 0, errorCode: state.groups.leave(groupId, request.memberId as string) };
  const members = (request.members as { memberId: string; groupInstanceId: string | null }[]).map((m) => ({
    memberId: m.memberId,
    groupInstanceId: m.groupInstanceId,
    errorCode: state.groups.leave(groupId, m.memberId),
  }));
  return { throttleTimeMs: 0, errorCode: 0, members };
};

/** Commits go to the platform's committed offsets (`Log.commitOffsets`); metadata strings are not kept. */
export const offsetCommit: Handler = async (request, _version, state) => {
  const groupId = request.groupId as string;
  const topics = request.topics as {
    name: string;
    partitions: { partitionIndex: number; committedOffset: number }[];
  }[];
  let errorCode = state.groups.checkCommit(
    groupId,
    request.generationIdOrMemberEpoch as number,
    request.memberId as string,
  );
  const known = new Map<string, number>();
  if (errorCode === 0) {
    const offsets: { topic: string; partition: number; offset: number }[] = [];
    for (const t of topics) {
      if (!known.has(t.name)) {
        const partitions = await state.log.describeTopic(t.name).then(
          (d) => d.partitions.length,
          () => 0,
        );
        known.set(t.name, partitions);
      }
      for (const p of t.partitions) {
        if (p.partitionIndex < known.get(t.name)! && p.committedOffset >= 0) {
          offsets.push({ topic: t.name, partition: p.partitionIndex, offset: p.committedOffset });
        }
      }
    }
    try {
      if (offsets.length > 0) await state.log.commitOffsets(groupId, offsets);
    } catch {
      errorCode = errorCodes.UNKNOWN_SERVER_ERROR;
    }
  }
  return {
    throttleTimeMs: 0,
    topics: topics.map((t) => ({
      name: t.name,
      partitions: t.partitions.map((p) => ({
        partitionIndex: p.partitionIndex,
        errorCode:
          errorCode !== 0
            ? errorCode
            : (known.get(t.name) ?? 0) <= p.partitionIndex
              ? errorCodes.UNKNOWN_TOPIC_OR_PARTITION
              : 0,
      })),
    })),
  };
};

async function fetchGroupOffsets(
  state: Parameters<Handler>[2],
  groupId: string,
  topics: { name: string; partitionIndexes: number[] }[] | null,
): Promise<Message[]> {
  const wanted =
    topics ??
    (await state.log.listTopics()).map((name) => ({ name, partitionIndexes: null as number[] | null }));
  const out: Message[] = [];
  for (const t of wanted) {
    const committed = await state.log
      .committedOffsets(groupId, t.name)
      .catch(() => new Map<number, number>());
    const indexes = t.partitionIndexes ?? [...committed.keys()].sort((a, b) => a - b);
    if (topics === null && indexes.length === 0) continue;
    out.push({
      name: t.name,
      partitions: indexes.map((partitionIndex) => ({
        partitionIndex,
        committedOffset: committed.get(partitionIndex) ?? -1,
        committedLeaderEpoch: -1,
        metadata: '',
        errorCode: 0,
      })),
    });
  }
  return out;
}

export const offsetFetch: Handler = async (request, version, state) => {
  if (version < 8) {
    const topics = await fetchGroupOffsets(
      state,
      request.groupId as string,
      request.topics as { name: string; partitionIndexes: number[] }[] | null,
    );
    return { throttleTimeMs: 0, topics, errorCode: 0 };
  }
  const groups = request.groups as {
    groupId: string;
    topics: { name: string; partitionIndexes: number[] }[] | null;
  }[];
  return {
    throttleTimeMs: 0,
    groups: await Promise.all(
      groups.map(async (g) => ({
        groupId: g.groupId,
        topics: await fetchGroupOffsets(state, g.groupId, g.topics),
        errorCode: 0,
      })),
    ),
  };
};

/** The platform's groups (committed offsets) and the Kafka protocol's live groups. */
export const listGroups: Handler = async (request, _version, state) => {
  const ids = new Set([...(await state.log.listGroups()), ...state.groups.groupIds()]);
  const statesFilter = ((request.statesFilter as string[] | undefined) ?? []).map((s) => s.toLowerCase());
  const groups = [...ids].sort().flatMap((groupId) => {
    const live = state.groups.describe(groupId);
    const groupState = live?.state ?? 'Empty';
    if (statesFilter.length > 0 && !statesFilter.includes(groupState.toLowerCase())) return [];
    return [{ groupId, protocolType: live?.protocolType || 'consumer', groupState, groupType: 'classic' }];
  });
  return { throttleTimeMs: 0, errorCode: 0, groups };
};

export const describeGroups: Handler = async (request, _version, state) => {
  const known = new Set(await state.log.listGroups());
  return {
    throttleTimeMs: 0,
    groups: (request.groups as string[]).map((groupId) => {
      const live = state.groups.describe(groupId);
      return {
        errorCode: 0,
        groupId,
        groupState: live?.state ?? (known.has(groupId) ? 'Empty' : 'Dead'),
        protocolType: live?.protocolType ?? '',
        protocolData: live?.protocolName ?? '',
        members: (live?.members ?? []).map((m) => ({
          memberId: m.memberId,
          groupInstanceId: m.groupInstanceId,
          clientId: m.clientId,
          clientHost: m.clientHost,
          memberMetadata: m.metadata,
          memberAssignment: m.assignment,
        })),
      };
    }),
  };
};

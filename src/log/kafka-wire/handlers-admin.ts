import { TributaryError } from '../../core/index.js';
import { errorCodeOf, errorCodes } from './errors.js';
import { topicId, type Handler } from './handlers.js';
import type { Message } from './schema.js';

/** Topic configs CreateTopics accepts: the log's retention; cleanup.policy only as `delete` (no compaction). */
function topicConfigFrom(
  configs: { name: string; value: string | null }[],
): { retentionMs?: number; retentionBytes?: number } | string {
  const out: { retentionMs?: number; retentionBytes?: number } = {};
  for (const c of configs) {
    if (c.name === 'retention.ms' || c.name === 'retention.bytes') {
      const value = Number(c.value);
      if (!Number.isSafeInteger(value) || value < -1)
        return `${c.name} must be an integer >= -1, got ${c.value}`;
      if (c.name === 'retention.ms') out.retentionMs = value;
      else out.retentionBytes = value;
    } else if (c.name === 'cleanup.policy') {
      if (c.value !== 'delete')
        return `cleanup.policy ${c.value} is not supported (the log only deletes by retention)`;
    }
    // Other configs (segment.bytes, min.insync.replicas, ...) have no meaning for the embedded log and are ignored.
  }
  return out;
}

export const createTopics: Handler = async (request, _version, state) => {
  const validateOnly = request.validateOnly === true;
  const topics = request.topics as {
    name: string;
    numPartitions: number;
    replicationFactor: number;
    assignments: unknown[];
    configs: { name: string; value: string | null }[];
  }[];
  const results: Message[] = [];
  for (const t of topics) {
    const result: Message = {
      name: t.name,
      topicId: topicId(t.name),
      errorCode: 0,
      errorMessage: null,
      numPartitions: -1,
      replicationFactor: -1,
      configs: null,
    };
    results.push(result);
    const partitions = t.numPartitions === -1 ? 1 : t.numPartitions;
    const config = topicConfigFrom(t.configs);
    if (t.assignments.length > 0) {
      result.errorCode = errorCodes.INVALID_REPLICA_ASSIGNMENT;
      result.errorMessage = 'manual replica assignment is not supported: there is one broker';
    } else if (t.replicationFactor !== -1 && t.replicationFactor !== 1) {
      result.errorCode = errorCodes.INVALID_REPLICATION_FACTOR;
      result.errorMessage = `replication factor ${t.replicationFactor}: this log has one broker (use 1 or -1)`;
    } else if (!(partitions >= 1)) {
      result.errorCode = errorCodes.INVALID_PARTITIONS;
      result.errorMessage = `number of partitions must be >= 1, got ${t.numPartitions}`;
    } else if (typeof config === 'string') {
      result.errorCode = errorCodes.INVALID_CONFIG;
      result.errorMessage = config;
    } else if ((await state.log.listTopics()).includes(t.name)) {
      result.errorCode = errorCodes.TOPIC_ALREADY_EXISTS;
      result.errorMessage = `topic ${t.name} already exists`;
    } else if (!validateOnly) {
      try {
        await state.log.createTopic(t.name, { partitions, ...config });
      } catch (error) {
        result.errorCode =
          error instanceof TributaryError && error.code === 'INVALID_ARGUMENT'
            ? errorCodes.INVALID_TOPIC_EXCEPTION
            : errorCodeOf(error);
        result.errorMessage = (error as Error).message;
      }
    }
    if (result.errorCode === 0) {
      result.numPartitions = partitions;
      result.replicationFactor = 1;
      result.configs = [];
    }
  }
  return { throttleTimeMs: 0, topics: results };
};

export const deleteTopics: Handler = async (request, version, state) => {
  const names = new Map<string, string>();
  for (const name of await state.log.listTopics()) names.set(topicId(name), name);
  const wanted =
    version >= 6
      ? (request.topics as { name: string | null; topicId: string }[]).map((t) => ({
          name: t.name ?? names.get(t.topicId) ?? null,
          topicId: t.topicId,
        }))
      : (request.topicNames as string[]).map((name) => ({ name, topicId: topicId(name) }));
  const responses: Message[] = [];
  for (const t of wanted) {
    const response: Message = { name: t.name, topicId: t.topicId, errorCode: 0, errorMessage: null };
    responses.push(response);
    if (t.name === null) {
      response.errorCode = errorCodes.UNKNOWN_TOPIC_ID;
      continue;
    }
    try {
      await state.log.deleteTopic(t.name);
    } catch (error) {
      response.errorCode = errorCodeOf(error);
      response.errorMessage = (error as Error).message;
    }
  }
  return { throttleTimeMs: 0, responses };
};

const topicResource = 2;
const brokerResource = 4;
/** ConfigSource: 1 dynamic topic config, 5 static broker config (what the log's settings are). */
const sourceTopic = 1;
const sourceStatic = 5;

/** Describes a topic's configs (its retention, and the fixed facts of this log) or the broker's. */
export const describeConfigs: Handler = async (request, _version, state) => {
  const resources = request.resources as {
    resourceType: number;
    resourceName: string;
    configurationKeys: string[] | null;
  }[];
  const results: Message[] = [];
  for (const r of resources) {
    const result: Message = {
      errorCode: 0,
      errorMessage: null,
      resourceType: r.resourceType,
      resourceName: r.resourceName,
      configs: [],
    };
    results.push(result);
    let entries: [string, string, number][];
    if (r.resourceType === topicResource) {
      try {
        const d = await state.log.describeTopic(r.resourceName);
        entries = [
          ['retention.ms', String(d.retentionMs), sourceTopic],
          ['retention.bytes', String(d.retentionBytes), sourceTopic],
          ['cleanup.policy', 'delete', sourceStatic],
          ['message.timestamp.type', 'CreateTime', sourceStatic],
          ['compression.type', 'producer', sourceStatic],
        ];
      } catch (error) {
        result.errorCode = errorCodeOf(error);
        result.errorMessage = (error as Error).message;
        continue;
      }
    } else if (r.resourceType === brokerResource) {
      entries = [
        ['broker.id', '0', sourceStatic],
        ['auto.create.topics.enable', 'false', sourceStatic],
        ['num.partitions', '1', sourceStatic],
        ['default.replication.factor', '1', sourceStatic],
      ];
    } else {
      result.errorCode = errorCodes.INVALID_REQUEST;
      result.errorMessage = `resource type ${r.resourceType} is not supported (2 topic, 4 broker)`;
      continue;
    }
    const keys = r.configurationKeys;
    result.configs = entries
      .filter(([name]) => keys === null || keys.includes(name))
      .map(([name, value, source]) => ({
        name,
        value,
        readOnly: source === sourceStatic,
        isDefault: false,
        configSource: source,
        isSensitive: false,
        synonyms: [],
        configType: 0,
        documentation: null,
      }));
  }
  return { throttleTimeMs: 0, results };
};

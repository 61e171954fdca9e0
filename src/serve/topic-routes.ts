import { z } from 'zod';
import { TributaryError, limits } from '../core/index.js';
import { AvroSerde, offsetRanges, type Log, type ProducerRecord, type SchemaRegistry } from '../log/index.js';
import type { AuthInfo } from './keys.js';
import type { ApiRouter } from './router.js';
import type { PipelineModule } from './types.js';

const decoder = new TextDecoder('utf-8');

const topicParam = z
  .string()
  .regex(/^[A-Za-z0-9._-]{1,249}$/)
  .describe('Topic name');

/** Topics belong to no tenant, so a key bound to one may not use these routes even with admin scope. */
function requirePlatformKey(auth: AuthInfo | undefined): void {
  if (auth?.tenant !== undefined) {
    throw new TributaryError(
      'FORBIDDEN',
      `the topics API is for platform keys; this key is bound to tenant ${JSON.stringify(auth.tenant)}`,
    );
  }
}

const recordJsonSchema = z.object({
  topic: z.string(),
  partition: z.number(),
  offset: z.number(),
  timestamp: z.number(),
  key: z.string().nullable(),
  value: z.string().nullable(),
});

/**
 * Admin routes over the platform's log, so the CLI (`tributary topics …`) works while `tributary up`
 * holds the data dir's lock:
 *
 *   GET  /api/topics                                         → {topics: [name…]}
 *   GET  /api/topics/:topic                                  → TopicDescription
 *   GET  /api/topics/:topic/partitions/:partition/records?offset=&limit=
 *        → {records: [{topic, partition, offset, timestamp, key, value}]}, key and value decoded as UTF-8;
 *          an Avro value (Confluent wire format) as JSON text when the schema registry knows its id
 *   POST /api/topics              {name, partitions, retentionMs?, retentionBytes?} → {created}
 *   POST /api/topics/:topic/records {records: [{key?, value, timestamp?}]}
 *        → {topic, records, offsets: [{partition, first, last}]}; a missing topic is created with one
 *          partition. Unlike `/api/ingest`, record timestamps are kept.
 *
 * Admin scope and a key bound to no tenant only: these read and write any topic.
 */
export function registerTopicRoutes(api: ApiRouter, log: Log, schemaRegistry?: SchemaRegistry): void {
  const serde = schemaRegistry === undefined ? undefined : new AvroSerde(schemaRegistry);
  api.route({
    method: 'get',
    path: '/api/topics',
    summary: 'Log topic names',
    tags: ['topics'],
    scope: 'admin',
    responses: { 200: { description: 'topics', schema: z.object({ topics: z.array(z.string()) }) } },
    handler: async ({ auth }) => {
      requirePlatformKey(auth);
      return { topics: await log.listTopics() };
    },
  });

  api.route({
    method: 'get',
    path: '/api/topics/:topic',
    summary: 'Partitions of a topic with start/end offsets and sizes, and its retention',
    tags: ['topics'],
    scope: 'admin',
    params: z.object({ topic: topicParam }),
    responses: { 200: { description: 'topic description' }, 404: { description: 'no such topic' } },
    handler: async ({ params, auth }) => {
      requirePlatformKey(auth);
      return log.describeTopic(params.topic);
    },
  });

  api.route({
    method: 'get',
    path: '/api/topics/:topic/partitions/:partition/records',
    summary: 'Records of one partition from an offset (key and value as UTF-8 text; Avro values as JSON)',
    tags: ['topics'],
    scope: 'admin',
    params: z.object({ topic: topicParam, partition: z.coerce.number().int().min(0) }),
    query: z.object({
      offset: z.coerce.number().int().min(0).default(0).describe('First offset to read'),
      limit: z.coerce
        .number()
        .int()
        .min(1)
        .max(limits.topicRecordsPerRequestMax)
        .default(1000)
        .describe('Most records returned'),
    }),
    responses: {
      200: { description: 'records', schema: z.object({ records: z.array(recordJsonSchema) }) },
    },
    handler: async ({ params, query, auth }) => {
      requirePlatformKey(auth);
      const records = await log.fetch(params.topic, params.partition, query.offset, {
        maxRecords: query.limit,
      });
      await serde?.prepare(records.map((r) => r.value));
      return {
        records: records.map((r) => ({
          topic: r.topic,
          partition: r.partition,
          offset: r.offset,
          timestamp: r.timestamp,
          key: r.key === null ? null : decoder.decode(r.key),
          value: r.value === null ? null : (serde?.jsonText(r.value) ?? decoder.decode(r.value)),
        })),
      };
    },
  });

  api.route({
    method: 'post',
    path: '/api/topics',
    summary: 'Create a topic',
    tags: ['topics'],
    scope: 'admin',
    body: z.object({
      name: topicParam,
      partitions: z.number().int().min(1).max(10_000),
      retentionMs: z.number().int().min(-1).optional(),
      retentionBytes: z.number().int().min(-1).optional(),
    }),
    responses: { 200: { description: 'created' }, 409: { description: 'the topic exists' } },
    handler: async ({ body, auth }) => {
      requirePlatformKey(auth);
      await log.createTopic(body.name, {
        partitions: body.partitions,
        ...(body.retentionMs === undefined ? {} : { retentionMs: body.retentionMs }),
        ...(body.retentionBytes === undefined ? {} : { retentionBytes: body.retentionBytes }),
      });
      return { created: body.name };
    },
  });

  api.route({
    method: 'post',
    path: '/api/topics/:topic/records',
    summary: 'Append records (key, value, timestamp kept); creates a missing topic with one partition',
    tags: ['topics'],
    scope: 'admin',
    params: z.object({ topic: topicParam }),
    body: z.object({
      records: z
        .array(
          z.object({
            key: z.string().nullable().optional(),
            value: z.string().nullable(),
            timestamp: z.number().int().min(0).optional(),
          }),
        )
        .max(limits.topicRecordsPerRequestMax),
    }),
    responses: { 200: { description: 'appended (durable)' } },
    handler: async ({ params, body, auth }) => {
      requirePlatformKey(auth);
      const topic = params.topic;
      await log.ensureTopic(topic, { partitions: 1 });
      if (body.records.length === 0) return { topic, records: 0, offsets: [] };
      const records: ProducerRecord[] = body.records.map((r) => ({
        topic,
        value: r.value,
        ...(r.key === undefined ? {} : { key: r.key }),
        ...(r.timestamp === undefined ? {} : { timestamp: r.timestamp }),
      }));
      const results = await log.append(records);
      return {
        topic,
        records: records.length,
        offsets: offsetRanges(results),
      };
    },
  });
}

/** The topic routes as a module for `createApp({ pipelines })` (admin-only, so tenants never see it). */
export function topicsModule(log: Log, schemaRegistry?: SchemaRegistry): PipelineModule {
  return {
    name: 'topics',
    title: 'Log topics',
    description: 'Admin access to the log: list, describe, read and append',
    tenantScoped: false,
    routes: (api) => registerTopicRoutes(api, log, schemaRegistry),
  };
}

import { z } from 'zod';
import { TributaryError } from '../../core/index.js';
import type { StartPosition, TopicConfig, TopicPartitionOffset } from '../types.js';
import { decodeJson } from './protocol.js';

/**
 * Schemas of the JSON message bodies a log server accepts (see protocol.ts for the messages). Every
 * body is checked before the server acts on it: a peer with the token can still send anything, and
 * a malformed body must be refused with a typed error naming the field, never reach the log as a
 * wrongly typed value. Kept apart from the server's dispatch so both can change on their own.
 */

// Types only: ranges and formats (a negative offset, an empty group, a bad topic name) are left to
// the log, so a remote caller gets the very error a local one would.
const name = z.string();
const count = z.number();
const offset = z.number();
/** `Infinity` travels as `null` in JSON; readers treat a missing wait as no wait. */
const waitMs = z
  .number()
  .nullable()
  .transform((ms) => ms ?? 0);
const consumerId = z.number().int().nonnegative();
const topicPartition = z.object({ topic: name, partition: count });
const topicPartitionOffset = z.object({ topic: name, partition: count, offset });

const topicConfig: z.ZodType<TopicConfig> = z.object({
  partitions: z.number(),
  retentionMs: z.number().optional(),
  retentionBytes: z.number().optional(),
});
const startPosition: z.ZodType<StartPosition> = z.union([
  z.literal('earliest'),
  z.literal('latest'),
  z.object({ timestamp: z.number() }),
]);
const offsets: z.ZodType<TopicPartitionOffset[]> = z.array(topicPartitionOffset).max(1_000_000);

export const bodySchemas = {
  HELLO: z.object({ protocolVersion: z.number(), token: z.string().max(4096) }),
  CREATE_TOPIC: z.tuple([name, topicConfig, z.object({ ifNotExists: z.boolean().optional() }).nullish()]),
  ENSURE_TOPIC: z.tuple([name, topicConfig]),
  DELETE_TOPIC: z.tuple([name]),
  DESCRIBE_TOPIC: z.tuple([name]),
  FETCH: z.object({
    topic: name,
    partition: count,
    offset,
    maxRecords: z.number(),
    maxBytes: z.number(),
    waitMs,
  }),
  OFFSET_FOR_TIMESTAMP: z.tuple([name, count, z.number()]),
  COMMIT_OFFSETS: z.tuple([name, offsets]),
  COMMITTED_OFFSETS: z.tuple([name, name]),
  RESET_OFFSETS: z.tuple([name, name, startPosition]),
  CONSUMER_OPEN: z.object({
    consumerId,
    group: name,
    topics: z.array(name).max(100_000),
    from: startPosition.optional(),
  }),
  CONSUMER_POLL: z.object({
    consumerId,
    maxRecords: z.number(),
    maxBytes: z.number(),
    waitMs,
  }),
  CONSUMER_COMMIT: z.object({ consumerId, offsets: offsets.optional() }),
  CONSUMER_CLOSE: z.object({ consumerId }),
  CONSUMER_SEEK: z.object({ consumerId, topic: name, partition: count, offset, sequence: count }),
  CONSUMER_PAUSE: z.object({ consumerId, partitions: z.array(topicPartition).max(1_000_000) }),
  CONSUMER_RESUME: z.object({ consumerId, partitions: z.array(topicPartition).max(1_000_000) }),
  ASSIGNMENT_ACK: z.object({
    consumerId,
    pushId: count,
    error: z.object({ code: z.string().max(64), message: z.string() }).optional(),
  }),
} as const;

export type BodyName = keyof typeof bodySchemas;
export type Body<N extends BodyName> = z.output<(typeof bodySchemas)[N]>;

/**
 * The JSON body of message `what`, checked against its schema: DECODE_FAILED when it is not JSON,
 * INVALID_ARGUMENT naming the first offending field when it does not match.
 *
 * @example
 * const { topic, partition, offset } = decodeBody(frame.payload, 'FETCH');
 */
export function decodeBody<N extends BodyName>(payload: Buffer, what: N): Body<N> {
  const result = bodySchemas[what].safeParse(decodeJson(payload, what));
  if (result.success) return result.data as Body<N>;
  const issue = result.error.issues[0];
  const field = issue.path.length === 0 ? 'body' : issue.path.join('.');
  throw new TributaryError('INVALID_ARGUMENT', `${what}: ${field}: ${issue.message}`, {
    details: { message: what, field },
  });
}

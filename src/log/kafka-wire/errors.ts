import { TributaryError } from '../../core/index.js';

/** The Kafka protocol error codes the listener answers with (org.apache.kafka.common.protocol.Errors). */
export const errorCodes = {
  UNKNOWN_SERVER_ERROR: -1,
  NONE: 0,
  OFFSET_OUT_OF_RANGE: 1,
  CORRUPT_MESSAGE: 2,
  UNKNOWN_TOPIC_OR_PARTITION: 3,
  INVALID_FETCH_SIZE: 4,
  REQUEST_TIMED_OUT: 7,
  MESSAGE_TOO_LARGE: 10,
  COORDINATOR_NOT_AVAILABLE: 15,
  NOT_COORDINATOR: 16,
  INVALID_TOPIC_EXCEPTION: 17,
  RECORD_LIST_TOO_LARGE: 18,
  INVALID_REQUIRED_ACKS: 21,
  ILLEGAL_GENERATION: 22,
  INCONSISTENT_GROUP_PROTOCOL: 23,
  INVALID_GROUP_ID: 24,
  UNKNOWN_MEMBER_ID: 25,
  INVALID_SESSION_TIMEOUT: 26,
  REBALANCE_IN_PROGRESS: 27,
  TOPIC_AUTHORIZATION_FAILED: 29,
  GROUP_AUTHORIZATION_FAILED: 30,
  CLUSTER_AUTHORIZATION_FAILED: 31,
  INVALID_TIMESTAMP: 32,
  UNSUPPORTED_SASL_MECHANISM: 33,
  ILLEGAL_SASL_STATE: 34,
  UNSUPPORTED_VERSION: 35,
  TOPIC_ALREADY_EXISTS: 36,
  INVALID_PARTITIONS: 37,
  INVALID_REPLICATION_FACTOR: 38,
  INVALID_REPLICA_ASSIGNMENT: 39,
  INVALID_CONFIG: 40,
  INVALID_REQUEST: 42,
  OUT_OF_ORDER_SEQUENCE_NUMBER: 45,
  DUPLICATE_SEQUENCE_NUMBER: 46,
  INVALID_PRODUCER_EPOCH: 47,
  TRANSACTIONAL_ID_AUTHORIZATION_FAILED: 53,
  KAFKA_STORAGE_ERROR: 56,
  SASL_AUTHENTICATION_FAILED: 58,
  UNKNOWN_PRODUCER_ID: 59,
  MEMBER_ID_REQUIRED: 79,
  UNKNOWN_TOPIC_ID: 100,
} as const;

/** The Kafka error code for a failure of the log underneath (naming what went wrong in logs). */
export function errorCodeOf(error: unknown): number {
  if (!(error instanceof TributaryError)) return errorCodes.UNKNOWN_SERVER_ERROR;
  switch (error.code) {
    case 'NOT_FOUND':
      return errorCodes.UNKNOWN_TOPIC_OR_PARTITION;
    case 'ALREADY_EXISTS':
      return errorCodes.TOPIC_ALREADY_EXISTS;
    case 'PAYLOAD_TOO_LARGE':
      return errorCodes.MESSAGE_TOO_LARGE;
    case 'CORRUPT_DATA':
      return errorCodes.CORRUPT_MESSAGE;
    // A full disk or a failed fsync: retriable for Kafka clients, as the log resumes by itself.
    case 'STORAGE_FULL':
    case 'UNAVAILABLE':
      return errorCodes.KAFKA_STORAGE_ERROR;
    case 'INVALID_ARGUMENT':
      return errorCodes.INVALID_REQUEST;
    default:
      return errorCodes.UNKNOWN_SERVER_ERROR;
  }
}

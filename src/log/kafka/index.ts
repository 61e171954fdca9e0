// The Kafka backend of the `Log` (loaded only when the config selects kafka://).
export { openKafkaLog, type KafkaLogOptions } from './log.js';

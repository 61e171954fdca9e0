// The Kafka protocol listener: the embedded log served over Apache Kafka's wire protocol.
export { serveKafka, servedApiVersions, type KafkaListener, type KafkaListenerOptions } from './server.js';
export {
  scramCredential,
  scramIterations,
  type KafkaAuthenticator,
  type KafkaPrincipal,
  type ScramCredential,
} from './auth.js';

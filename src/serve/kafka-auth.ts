import type { KafkaAuthenticator, KafkaPrincipal } from '../log/index.js';
import { hasScope, type AuthInfo, type KeyStore } from './keys.js';

/**
 * The Kafka listener's SASL over the API keys (`serveKafka({ authenticator })`):
 *
 * - SASL/PLAIN: any user name, the API key (`trb_<id>_<secret>`) as password.
 * - SASL/SCRAM-SHA-256: the key's id (`<id>` or `trb_<id>`) as user name, the key as password;
 *   the server checks the proof against the verifier stored with the key (keys created before the
 *   listener existed have none: use PLAIN, or create a new key).
 *
 * Scopes: `ingest` may produce (and InitProducerId), `read` may consume (Fetch, ListOffsets,
 * groups and their offsets), `admin` all of it plus CreateTopics / DeleteTopics; Metadata,
 * ApiVersions and DescribeConfigs need only a valid key. Topics belong to no tenant, so a key bound
 * to a tenant is refused, as on the topics API.
 */
export function kafkaAuthenticator(store: KeyStore): KafkaAuthenticator {
  return {
    plain: (_username, password) => {
      const auth = store.verify(password);
      return auth === null ? 'unknown or revoked API key' : principal(auth);
    },
    scram: (username) => {
      const id = username.startsWith('trb_') ? username.slice(4) : username;
      const found = store.scram(id);
      if (found === null)
        return `no SCRAM credential for key id ${JSON.stringify(id)} (unknown, revoked, or created before SCRAM; use PLAIN)`;
      const p = principal(found.auth);
      return typeof p === 'string' ? p : { credential: found.credential, principal: p };
    },
  };
}

function principal(auth: AuthInfo): KafkaPrincipal | string {
  if (auth.tenant !== undefined) {
    return `the Kafka listener is for platform keys; key ${auth.keyId} is bound to tenant ${JSON.stringify(auth.tenant)}`;
  }
  return {
    name: `${auth.keyId} (${auth.name})`,
    produce: hasScope(auth, 'ingest'),
    consume: hasScope(auth, 'read'),
    admin: hasScope(auth, 'admin'),
  };
}

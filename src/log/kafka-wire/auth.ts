import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Who a Kafka client is once SASL succeeded, and what it may do. The log layer knows nothing of
 * API keys (they live in serve); whoever starts the listener passes a `KafkaAuthenticator` that maps
 * credentials to principals (`kafkaAuthenticator` in serve, over the key store).
 */
export interface KafkaPrincipal {
  /** For logs: the key's id and name. */
  name: string;
  /** Produce and InitProducerId. */
  produce: boolean;
  /** Fetch, ListOffsets, groups and their offsets. */
  consume: boolean;
  /** CreateTopics, DeleteTopics. */
  admin: boolean;
}

/** A SCRAM-SHA-256 verifier (RFC 5802 §3): what the server keeps instead of the password. */
export interface ScramCredential {
  salt: Buffer;
  iterations: number;
  storedKey: Buffer;
  serverKey: Buffer;
}

export interface KafkaAuthenticator {
  /** SASL/PLAIN: the principal, or a sentence saying why not (shown to the client). */
  plain(username: string, password: string): KafkaPrincipal | string;
  /** SASL/SCRAM-SHA-256: the user's verifier and principal, or a sentence saying why not. */
  scram(username: string): { credential: ScramCredential; principal: KafkaPrincipal } | string;
}

/** RFC 7677 asks for at least 4096 iterations of PBKDF2-HMAC-SHA-256. */
export const scramIterations = 4096;

/**
 * Derives the SCRAM-SHA-256 verifier of `password` (RFC 5802: SaltedPassword = PBKDF2(password,
 * salt, i); StoredKey = H(HMAC(SaltedPassword, "Client Key")); ServerKey = HMAC(SaltedPassword,
 * "Server Key")). Kafka clients do not SASLprep; API keys are ASCII, so nothing to normalise.
 *
 * @example
 * const credential = scramCredential('trb_0123456789ab_secret');
 */
export function scramCredential(
  password: string,
  salt: Buffer = randomBytes(16),
  iterations = scramIterations,
): ScramCredential {
  const salted = pbkdf2Sync(password, salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  return {
    salt,
    iterations,
    storedKey: createHash('sha256').update(clientKey).digest(),
    serverKey: createHmac('sha256', salted).update('Server Key').digest(),
  };
}

/** RFC 5802 saslname: "=2C" is ",", "=3D" is "=". */
function unescapeSaslName(name: string): string {
  return name.replace(/=2C/g, ',').replace(/=3D/g, '=');
}

function attributes(message: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of message.split(',')) {
    const eq = part.indexOf('=');
    if (eq === 1) out.set(part[0], part.slice(2));
  }
  return out;
}

/**
 * The server side of one SCRAM-SHA-256 exchange (RFC 5802, RFC 7677): `first` answers the
 * client-first-message, `final` checks the client's proof and answers with the server signature.
 * Each returns either the bytes to send or an error sentence.
 */
export class ScramServer {
  #clientFirstBare = '';
  #serverFirst = '';
  #nonce = '';
  #credential: ScramCredential | undefined;
  principal: KafkaPrincipal | undefined;
  #authenticator: KafkaAuthenticator;

  readonly #serverNonce: () => string;

  /** `serverNonce` is for RFC test vectors; by default 18 random bytes, base64. */
  constructor(authenticator: KafkaAuthenticator, serverNonce = () => randomBytes(18).toString('base64')) {
    this.#authenticator = authenticator;
    this.#serverNonce = serverNonce;
  }

  first(token: Buffer): Buffer | string {
    const text = token.toString('utf8');
    // gs2-header: "n,," or "y,," (no channel binding), optionally with an authzid "n,a=...,".
    const match = /^([ny]),(a=[^,]*)?,(.*)$/.exec(text);
    if (!match) return 'SCRAM client-first-message is malformed (channel binding is not supported)';
    this.#clientFirstBare = match[3];
    const attrs = attributes(this.#clientFirstBare);
    const username = attrs.get('n');
    const clientNonce = attrs.get('r');
    if (username === undefined || clientNonce === undefined || clientNonce === '') {
      return 'SCRAM client-first-message needs n= and r=';
    }
    if (attrs.get('t') !== undefined || this.#clientFirstBare.includes('tokenauth=true')) {
      return 'SCRAM delegation tokens are not supported';
    }
    const found = this.#authenticator.scram(unescapeSaslName(username));
    if (typeof found === 'string') return found;
    this.#credential = found.credential;
    this.principal = found.principal;
    this.#nonce = clientNonce + this.#serverNonce();
    this.#serverFirst = `r=${this.#nonce},s=${found.credential.salt.toString('base64')},i=${found.credential.iterations}`;
    return Buffer.from(this.#serverFirst, 'utf8');
  }

  final(token: Buffer): Buffer | string {
    const credential = this.#credential;
    if (credential === undefined) return 'SCRAM client-final-message before client-first-message';
    const text = token.toString('utf8');
    const proofAt = text.lastIndexOf(',p=');
    if (proofAt < 0) return 'SCRAM client-final-message has no proof';
    const withoutProof = text.slice(0, proofAt);
    const attrs = attributes(withoutProof);
    // Kafka's own server checks only that the nonce ends with the server's (librdkafka sends its
    // client nonce once more in front), so that is what is checked here too.
    if (!(attrs.get('r') ?? '').endsWith(this.#nonce)) return 'SCRAM nonce does not match';
    const proof = Buffer.from(text.slice(proofAt + 3), 'base64');
    const authMessage = `${this.#clientFirstBare},${this.#serverFirst},${withoutProof}`;
    const clientSignature = createHmac('sha256', credential.storedKey).update(authMessage).digest();
    if (proof.length !== clientSignature.length) return 'SCRAM proof has the wrong length';
    const clientKey = Buffer.alloc(proof.length);
    for (let i = 0; i < proof.length; i++) clientKey[i] = proof[i] ^ clientSignature[i];
    const storedKey = createHash('sha256').update(clientKey).digest();
    if (!timingSafeEqual(storedKey, credential.storedKey))
      return 'SCRAM authentication failed: wrong password';
    const serverSignature = createHmac('sha256', credential.serverKey).update(authMessage).digest();
    return Buffer.from(`v=${serverSignature.toString('base64')}`, 'utf8');
  }
}

/** SASL/PLAIN (RFC 4616): `authzid NUL authcid NUL password`. */
export function parsePlain(token: Buffer): { username: string; password: string } | string {
  const parts = token.toString('utf8').split('\u0000');
  if (parts.length !== 3) return 'SASL/PLAIN token must be authzid NUL username NUL password';
  return { username: parts[1], password: parts[2] };
}

import { Hono, type Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { childLogger, isTributaryError, requestHeader, TributaryError } from '../core/index.js';
import {
  isCompatibilityLevel,
  registryError,
  registryErrorCodeOf,
  registryErrorCodes,
  schemaRegistryContentType,
  type SchemaRegistry,
  type VersionRef,
} from '../log/index.js';
import { httpStatusByCode } from './http-errors.js';
import type { ApiScope } from './keys.js';

const log = childLogger('schema-registry');

/**
 * Checks the caller for a scope (the app's key check and rate limit); throws UNAUTHENTICATED,
 * FORBIDDEN or RATE_LIMITED. Keys bound to a tenant are refused: subjects belong to no tenant.
 */
export type RegistryAuthorize = (c: Context, scope: ApiScope) => Promise<void>;

/**
 * The Confluent Schema Registry REST API over a `SchemaRegistry`, mounted by `createApp` at
 * `/schema-registry` (a client's base URL is `http://<host>:<port>/schema-registry`). Answers are
 * `application/vnd.schemaregistry.v1+json`; errors are `{error_code, message}` with the registry's
 * codes (40401 subject, 40402 version, 40403 schema not found, 409 incompatible, 42201 invalid
 * schema, 42202 invalid version, 42203 invalid compatibility level), the status being the first
 * three digits. Reads (and lookups, compatibility checks) need scope `read`; registering and
 * setting a subject's level `ingest`; the global level and deletes `admin`.
 *
 *   GET    /subjects[?deleted=true]                      → ["movies-value", …]
 *   GET    /subjects/{s}/versions                        → [1, 2]
 *   GET    /subjects/{s}/versions/{v|latest}             → {subject, id, version, schema}
 *   GET    /subjects/{s}/versions/{v|latest}/schema      → the schema itself
 *   POST   /subjects/{s}/versions      {schema}          → {id}   (same schema again: same id)
 *   POST   /subjects/{s}               {schema}          → {subject, id, version, schema}
 *   DELETE /subjects/{s}[?permanent=true]                → [versions]
 *   DELETE /subjects/{s}/versions/{v}[?permanent=true]   → version
 *   GET    /schemas/ids/{id}                             → {schema}
 *   GET    /schemas/types                                → ["AVRO"]
 *   POST   /compatibility/subjects/{s}/versions/{v|latest}[?verbose=true] {schema}
 *                                                        → {is_compatible[, messages]}
 *   GET|PUT /config  ·  GET|PUT|DELETE /config/{s}       → {compatibilityLevel} / {compatibility}
 */
export function createSchemaRegistryApp(registry: SchemaRegistry, authorize: RegistryAuthorize): Hono {
  const app = new Hono();
  const answer = (c: Context, body: unknown, status: ContentfulStatusCode = 200) =>
    c.body(JSON.stringify(body), status, { 'content-type': schemaRegistryContentType });

  app.onError((error, c) => {
    const registryCode = registryErrorCodeOf(error);
    if (registryCode !== undefined) {
      const status = (
        registryCode >= 1000 ? Math.floor(registryCode / 100) : registryCode
      ) as ContentfulStatusCode;
      return answer(c, { error_code: registryCode, message: error.message }, status);
    }
    if (isTributaryError(error)) {
      const status = httpStatusByCode[error.code];
      if (status !== undefined) {
        if (error.code === 'UNAUTHENTICATED') c.header('WWW-Authenticate', 'Basic realm="schema-registry"');
        if (error.retryAfterMs !== undefined)
          c.header('Retry-After', String(Math.max(1, Math.ceil(error.retryAfterMs / 1000))));
        return answer(c, { error_code: status, message: error.message }, status);
      }
    }
    log.error(
      { err: error, method: c.req.method, path: c.req.path },
      'unhandled error in schema registry request',
    );
    return answer(c, { error_code: 50001, message: 'internal error; the server log has the details' }, 500);
  });
  app.notFound((c) => answer(c, { error_code: 404, message: `no route ${c.req.method} ${c.req.path}` }, 404));

  const scopeOf = (c: Context): ApiScope => {
    const method = c.req.method;
    if (method === 'GET' || method === 'HEAD') return 'read';
    if (method === 'POST') return /\/subjects\/[^/]+\/versions\/?$/.test(c.req.path) ? 'ingest' : 'read';
    // A producer registering a subject sets its level too (Confluent clients do on first use).
    if (method === 'PUT' && /\/config\/[^/]+\/?$/.test(c.req.path)) return 'ingest';
    return 'admin';
  };
  app.use('*', async (c, next) => {
    await authorize(c as Context, scopeOf(c as Context));
    await next();
  });

  app.get('/', (c) => answer(c, {}));

  app.get('/subjects', async (c) =>
    answer(c, await registry.subjects({ deleted: c.req.query('deleted') === 'true' })),
  );

  app.get('/subjects/:subject/versions', async (c) =>
    answer(c, await registry.versions(c.req.param('subject'))),
  );

  app.get('/subjects/:subject/versions/:version', async (c) =>
    answer(c, await registry.version(c.req.param('subject'), versionParam(c.req.param('version')))),
  );

  app.get('/subjects/:subject/versions/:version/schema', async (c) => {
    const found = await registry.version(c.req.param('subject'), versionParam(c.req.param('version')));
    return c.body(found.schema, 200, { 'content-type': schemaRegistryContentType });
  });

  app.post('/subjects/:subject/versions', async (c) => {
    const registered = await registry.register(c.req.param('subject'), await schemaBody(c));
    return answer(c, { id: registered.id });
  });

  app.post('/subjects/:subject', async (c) => {
    const found = await registry.lookup(c.req.param('subject'), await schemaBody(c));
    return answer(c, found);
  });

  app.delete('/subjects/:subject', async (c) =>
    answer(
      c,
      await registry.deleteSubject(c.req.param('subject'), {
        permanent: c.req.query('permanent') === 'true',
      }),
    ),
  );

  app.delete('/subjects/:subject/versions/:version', async (c) =>
    answer(
      c,
      await registry.deleteVersion(c.req.param('subject'), versionParam(c.req.param('version')), {
        permanent: c.req.query('permanent') === 'true',
      }),
    ),
  );

  app.get('/schemas/ids/:id', async (c) =>
    answer(c, { schema: await registry.schemaById(idParam(c.req.param('id'))) }),
  );

  app.get('/schemas/types', (c) => answer(c, ['AVRO']));

  app.post('/compatibility/subjects/:subject/versions/:version', async (c) => {
    const result = await registry.testCompatibility(
      c.req.param('subject'),
      await schemaBody(c),
      versionParam(c.req.param('version')),
    );
    return answer(c, {
      is_compatible: result.compatible,
      ...(c.req.query('verbose') === 'true' ? { messages: result.messages } : {}),
    });
  });

  app.get('/config', async (c) => answer(c, { compatibilityLevel: await registry.compatibility() }));

  app.put('/config', async (c) => {
    const level = await levelBody(c);
    await registry.setCompatibility(level);
    return answer(c, { compatibility: level });
  });

  app.get('/config/:subject', async (c) => {
    const subject = c.req.param('subject');
    if (c.req.query('defaultToGlobal') === 'true')
      return answer(c, { compatibilityLevel: await registry.compatibility(subject) });
    const own = await registry.subjectCompatibility(subject);
    if (own === null)
      throw registryError(
        registryErrorCodes.subjectCompatibilityNotFound,
        `Subject ${JSON.stringify(subject)} does not have subject-level compatibility configured`,
      );
    return answer(c, { compatibilityLevel: own });
  });

  app.put('/config/:subject', async (c) => {
    const level = await levelBody(c);
    await registry.setCompatibility(level, c.req.param('subject'));
    return answer(c, { compatibility: level });
  });

  app.delete('/config/:subject', async (c) =>
    answer(c, { compatibilityLevel: await registry.deleteSubjectCompatibility(c.req.param('subject')) }),
  );

  return app;
}

const documentedRoutes: [method: string, path: string, summary: string, scope: ApiScope][] = [
  ['get', '/subjects', 'Subject names (`?deleted=true` with soft-deleted ones)', 'read'],
  ['get', '/subjects/{subject}/versions', 'Live versions of a subject', 'read'],
  [
    'get',
    '/subjects/{subject}/versions/{version}',
    'One version (or `latest`): {subject, id, version, schema}',
    'read',
  ],
  ['get', '/subjects/{subject}/versions/{version}/schema', 'The schema of one version', 'read'],
  [
    'post',
    '/subjects/{subject}/versions',
    'Register a schema ({schema}); 409 when the level refuses it',
    'ingest',
  ],
  ['post', '/subjects/{subject}', 'Find the version holding a schema', 'read'],
  ['delete', '/subjects/{subject}', 'Soft-delete a subject (`?permanent=true` after that)', 'admin'],
  [
    'delete',
    '/subjects/{subject}/versions/{version}',
    'Soft-delete a version (`?permanent=true` after that)',
    'admin',
  ],
  ['get', '/schemas/ids/{id}', 'A schema by its global id', 'read'],
  ['get', '/schemas/types', 'Schema types: AVRO', 'read'],
  [
    'post',
    '/compatibility/subjects/{subject}/versions/{version}',
    'Test a schema against a version (`?verbose=true`)',
    'read',
  ],
  ['get', '/config', 'Global compatibility level', 'read'],
  ['put', '/config', 'Set the global compatibility level', 'admin'],
  ['get', '/config/{subject}', "A subject's own level (`?defaultToGlobal=true` falls back)", 'read'],
  ['put', '/config/{subject}', "Set a subject's level", 'ingest'],
  ['delete', '/config/{subject}', "Remove a subject's level", 'admin'],
];

/** OpenAPI path items of the registry routes (paths relative to `/schema-registry`). */
export function schemaRegistryOpenApiPaths(): Record<string, Record<string, unknown>> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const [method, path, summary, scope] of documentedRoutes) {
    (paths[path] ??= {})[method] = {
      operationId: `schemaRegistry${method}${path.replace(/[^A-Za-z0-9]+(.)?/g, (_, ch: string | undefined) => (ch ?? '').toUpperCase())}`,
      summary,
      description: `Confluent Schema Registry REST API. Needs an API key with scope \`${scope}\` (Bearer, or the password of HTTP Basic).`,
      tags: ['schema registry'],
      'x-tributary-scope': scope,
      responses: {
        200: { description: 'ok', content: { [schemaRegistryContentType]: { schema: {} } } },
        default: {
          description: 'registry error {error_code, message}',
          content: { [schemaRegistryContentType]: { schema: {} } },
        },
      },
    };
  }
  return paths;
}

/** `latest`, `-1` or a number; anything else is 42202. */
function versionParam(text: string): VersionRef {
  if (text === 'latest') return 'latest';
  if (!/^-?\d{1,10}$/.test(text))
    throw registryError(
      registryErrorCodes.invalidVersion,
      `invalid version ${JSON.stringify(text)}; a version is "latest" or an integer from 1`,
    );
  return Number(text);
}

function idParam(text: string): number {
  if (!/^\d{1,10}$/.test(text))
    throw registryError(registryErrorCodes.schemaNotFound, `schema id ${JSON.stringify(text)} not found`);
  return Number(text);
}

/** The request body as JSON: the Confluent media types, JSON, or (as some clients send) none. */
async function jsonBody(c: Context): Promise<Record<string, unknown>> {
  const type = (requestHeader(c, 'content-type') ?? '').toLowerCase();
  if (
    type !== '' &&
    !type.startsWith('application/vnd.schemaregistry') &&
    !type.startsWith('application/json') &&
    !type.startsWith('application/octet-stream')
  )
    throw new TributaryError(
      'UNSUPPORTED_MEDIA_TYPE',
      `Content-Type ${type} is not accepted; send ${schemaRegistryContentType} or application/json`,
    );
  let body: unknown;
  try {
    body = JSON.parse(await c.req.text());
  } catch (error) {
    throw new TributaryError(
      'INVALID_ARGUMENT',
      `request body is not valid JSON: ${(error as Error).message}`,
    );
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw new TributaryError('INVALID_ARGUMENT', 'request body must be a JSON object');
  return body as Record<string, unknown>;
}

async function schemaBody(c: Context): Promise<string> {
  const body = await jsonBody(c);
  if (body.schemaType !== undefined && body.schemaType !== 'AVRO')
    throw registryError(
      registryErrorCodes.invalidSchema,
      `schemaType ${JSON.stringify(body.schemaType)} is not supported; this registry holds AVRO schemas`,
    );
  if (Array.isArray(body.references) && body.references.length > 0)
    throw registryError(registryErrorCodes.invalidSchema, 'schema references are not supported');
  if (typeof body.schema !== 'string' || body.schema.trim() === '')
    throw registryError(
      registryErrorCodes.invalidSchema,
      'request body needs "schema": the Avro schema as a JSON string',
    );
  return body.schema;
}

async function levelBody(c: Context) {
  const body = await jsonBody(c);
  const level =
    typeof body.compatibility === 'string' ? body.compatibility.toUpperCase() : body.compatibility;
  if (!isCompatibilityLevel(level))
    throw registryError(
      registryErrorCodes.invalidCompatibility,
      `invalid compatibility level ${JSON.stringify(body.compatibility)}; one of BACKWARD, BACKWARD_TRANSITIVE, FORWARD, FORWARD_TRANSITIVE, FULL, FULL_TRANSITIVE, NONE`,
    );
  return level;
}

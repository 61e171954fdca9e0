import { registerTopicSchemas, type AvroWriter, type SchemaRegistry } from '../../log/index.js';
import { topics, type MoviesTopic } from './extract.js';

/**
 * Avro value schemas of the five topics, registered under `<topic>-value` (BACKWARD compatible)
 * when the extractor starts: a change that is not backward compatible is refused with the
 * registry's reason before anything is produced. Each value names the TMDB ids it is keyed by and
 * the typed fields downstream relies on, and carries the API's body verbatim (`body`, JSON text),
 * which bronze keeps as it came.
 */
const optional = (name: string, type: string) => ({ name, type: ['null', type], default: null });

export const movieValueSchema = {
  type: 'record',
  name: 'Movie',
  namespace: 'tributary.movies',
  fields: [
    { name: 'id', type: 'long' },
    optional('title', 'string'),
    optional('release_date', 'string'),
    optional('popularity', 'double'),
    optional('vote_average', 'double'),
    optional('vote_count', 'long'),
    { name: 'body', type: 'string' },
  ],
};

export const personValueSchema = {
  type: 'record',
  name: 'Person',
  namespace: 'tributary.movies',
  fields: [{ name: 'id', type: 'long' }, optional('name', 'string'), { name: 'body', type: 'string' }],
};

export const creditsValueSchema = {
  type: 'record',
  name: 'Credits',
  namespace: 'tributary.movies',
  fields: [
    { name: 'id', type: 'long' },
    { name: 'cast_ids', type: { type: 'array', items: 'long' }, default: [] },
    { name: 'crew_ids', type: { type: 'array', items: 'long' }, default: [] },
    { name: 'body', type: 'string' },
  ],
};

export const reviewValueSchema = {
  type: 'record',
  name: 'Review',
  namespace: 'tributary.movies',
  fields: [
    { name: 'id', type: 'string' },
    { name: 'movie_id', type: 'long' },
    optional('author', 'string'),
    { name: 'body', type: 'string' },
  ],
};

export const trendingValueSchema = {
  type: 'record',
  name: 'Trending',
  namespace: 'tributary.movies',
  fields: [
    { name: 'date', type: 'string' },
    { name: 'time_window', type: 'string' },
    { name: 'movie_ids', type: { type: 'array', items: 'long' }, default: [] },
    { name: 'body', type: 'string' },
  ],
};

export const valueSchemas: Record<MoviesTopic, object> = {
  [topics.movies]: movieValueSchema,
  [topics.people]: personValueSchema,
  [topics.credits]: creditsValueSchema,
  [topics.reviews]: reviewValueSchema,
  [topics.trending]: trendingValueSchema,
};

type Body = Record<string, unknown>;
const ids = (list: unknown) =>
  Array.isArray(list)
    ? list.flatMap((e) => (typeof (e as Body)?.id === 'number' ? [(e as Body).id as number] : []))
    : [];
const orNull = (value: unknown, type: 'string' | 'number') => (typeof value === type ? value : null);

/** The Avro value of one topic's body (the typed fields, and the body as JSON text). */
export function avroValue(topic: MoviesTopic, body: Body): Body {
  const text = JSON.stringify(body);
  switch (topic) {
    case topics.movies:
      return {
        id: body.id,
        title: orNull(body.title, 'string'),
        release_date: orNull(body.release_date, 'string'),
        popularity: orNull(body.popularity, 'number'),
        vote_average: orNull(body.vote_average, 'number'),
        vote_count: orNull(body.vote_count, 'number'),
        body: text,
      };
    case topics.people:
      return { id: body.id, name: orNull(body.name, 'string'), body: text };
    case topics.credits:
      return { id: body.id, cast_ids: ids(body.cast), crew_ids: ids(body.crew), body: text };
    case topics.reviews:
      return { id: body.id, movie_id: body.movie_id, author: orNull(body.author, 'string'), body: text };
    case topics.trending:
      return { date: body.date, time_window: body.time_window, movie_ids: ids(body.results), body: text };
  }
}

/** Encodes a topic's values: Avro under the registered schema, or JSON text without a registry. */
export type ValueEncoder = (topic: MoviesTopic, body: Body) => Buffer | string;

export const jsonValues: ValueEncoder = (_topic, body) => JSON.stringify(body);

/**
 * Registers the five value schemas (BACKWARD) and returns the Avro encoder; a schema the subject
 * refuses throws the registry's 409 naming the subject and the reason.
 */
export async function avroValues(registry: SchemaRegistry): Promise<ValueEncoder> {
  const writers: Record<string, AvroWriter> = await registerTopicSchemas(registry, valueSchemas, {
    compatibility: 'BACKWARD',
  });
  return (topic, body) => writers[topic].encode(avroValue(topic, body));
}

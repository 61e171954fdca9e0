/**
 * Avro schemas of the schema registry's tests: a movie record (v1), a compatible v2 (a new field
 * with a default: BACKWARD, FORWARD and FULL), and a breaking change (a new field without a default:
 * the new schema cannot read v1 data, so BACKWARD refuses it while FORWARD allows it).
 */
const movieFields = [
  { name: 'id', type: 'int' },
  { name: 'title', type: 'string' },
];

function movie(extra: object[]): string {
  return JSON.stringify({
    type: 'record',
    name: 'Movie',
    namespace: 'movies',
    fields: [...movieFields, ...extra],
  });
}

export const movieV1 = movie([]);
export const movieV2 = movie([{ name: 'genres', type: { type: 'array', items: 'string' }, default: [] }]);
export const movieBreaking = movie([{ name: 'rating', type: 'double' }]);

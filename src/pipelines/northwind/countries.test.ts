import { DuckDBInstance } from '@duckdb/node-api';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  canonicalCountry,
  countryAliases,
  countryAliasesValuesSql,
  countryKey,
  countryKeySql,
} from './countries.js';
import { quoteLiteral } from '../../lake/index.js';

describe('country standardisation', () => {
  let instance: DuckDBInstance;
  let sqlKey: (raw: string) => Promise<string | null>;

  beforeAll(async () => {
    instance = await DuckDBInstance.create(':memory:');
    const connection = await instance.connect();
    sqlKey = async (raw) => {
      const reader = await connection.runAndReadAll(`SELECT ${countryKeySql(quoteLiteral(raw))} AS k`);
      return reader.getRowObjectsJS()[0]?.k as string | null;
    };
  });
  afterAll(() => instance.closeSync());

  it('maps the documented variants to one spelling', () => {
    for (const raw of ['USA', 'U.S.A.', 'United States', ' us ', 'usa', 'Etats-Unis', 'États-Unis'])
      expect(canonicalCountry(raw)).toBe('United States');
    for (const raw of ['UK', 'U.K.', 'United Kingdom', 'Great Britain', 'Royaume-Uni'])
      expect(canonicalCountry(raw)).toBe('United Kingdom');
    expect(canonicalCountry('germany ')).toBe('Germany');
    expect(canonicalCountry('Deutschland')).toBe('Germany');
    expect(canonicalCountry('Atlantis ')).toBe('Atlantis');
    expect(canonicalCountry('  ')).toBeNull();
    expect(canonicalCountry(null)).toBeNull();
  });

  it('every alias key is already normalised and every canonical name maps to itself', () => {
    for (const [key, country] of Object.entries(countryAliases)) {
      expect(countryKey(key)).toBe(key);
      expect(canonicalCountry(country)).toBe(country);
    }
  });

  it('the SQL key expression equals the TypeScript one (batch and live agree)', async () => {
    const alphabet = fc.constantFrom('U', 's', 'a', '.', ' ', '-', 'é', 'K', '\t', 'x');
    await fc.assert(
      fc.asyncProperty(
        fc.array(alphabet, { maxLength: 12 }).map((chars) => chars.join('')),
        async (raw) => {
          expect(await sqlKey(raw)).toBe(countryKey(raw));
        },
      ),
      { seed: 42, numRuns: 200 },
    );
    for (const raw of Object.keys(countryAliases))
      expect(await sqlKey(raw.toUpperCase())).toBe(countryKey(raw.toUpperCase()));
  });

  it('the alias table is valid SQL with one row per alias', async () => {
    const connection = await instance.connect();
    const reader = await connection.runAndReadAll(
      `SELECT count(*)::INTEGER AS n, count(DISTINCT alias_key)::INTEGER AS k FROM ${countryAliasesValuesSql()}`,
    );
    expect(reader.getRowObjectsJS()[0]).toEqual({
      n: Object.keys(countryAliases).length,
      k: Object.keys(countryAliases).length,
    });
  });
});

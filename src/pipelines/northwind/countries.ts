/**
 * Country standardisation: one canonical English spelling per country, used by silver (batch) and
 * by the live job (stream), so batch and live revenue meet on the same key.
 *
 * A raw value is first normalised to a lookup key — trimmed, lower-cased, dots removed, runs of
 * spaces and hyphens collapsed to one space — and the key is looked up in `countryAliases`. A key
 * that is not in the table keeps its trimmed original spelling (it is still a country, just one we
 * have no alias for); an empty or null value is "missing" and the row is quarantined by silver.
 */

import { quoteLiteral } from '../../lake/index.js';

export const countryAliases: Readonly<Record<string, string>> = {
  usa: 'United States',
  us: 'United States',
  'united states': 'United States',
  'united states of america': 'United States',
  america: 'United States',
  'etats unis': 'United States',
  'états unis': 'United States',
  uk: 'United Kingdom',
  'united kingdom': 'United Kingdom',
  'great britain': 'United Kingdom',
  'royaume uni': 'United Kingdom',
  england: 'United Kingdom',
  gb: 'United Kingdom',
  germany: 'Germany',
  deutschland: 'Germany',
  allemagne: 'Germany',
  france: 'France',
  brazil: 'Brazil',
  brasil: 'Brazil',
  brésil: 'Brazil',
  spain: 'Spain',
  españa: 'Spain',
  espagne: 'Spain',
  mexico: 'Mexico',
  méxico: 'Mexico',
  mexique: 'Mexico',
  venezuela: 'Venezuela',
  italy: 'Italy',
  italia: 'Italy',
  italie: 'Italy',
  argentina: 'Argentina',
  argentine: 'Argentina',
  canada: 'Canada',
  sweden: 'Sweden',
  sverige: 'Sweden',
  suède: 'Sweden',
  belgium: 'Belgium',
  belgique: 'Belgium',
  portugal: 'Portugal',
  switzerland: 'Switzerland',
  suisse: 'Switzerland',
  schweiz: 'Switzerland',
  austria: 'Austria',
  österreich: 'Austria',
  autriche: 'Austria',
  denmark: 'Denmark',
  danmark: 'Denmark',
  danemark: 'Denmark',
  finland: 'Finland',
  suomi: 'Finland',
  finlande: 'Finland',
  ireland: 'Ireland',
  irlande: 'Ireland',
  norway: 'Norway',
  norge: 'Norway',
  norvège: 'Norway',
  poland: 'Poland',
  polska: 'Poland',
  pologne: 'Poland',
  japan: 'Japan',
  australia: 'Australia',
  netherlands: 'Netherlands',
  singapore: 'Singapore',
};

/** The lookup key of a raw country value (see the module comment); null when empty. */
export function countryKey(raw: string | null | undefined): string | null {
  if (raw === null || raw === undefined) return null;
  const key = raw
    .trim()
    .toLowerCase()
    .replaceAll('.', '')
    .replace(/[\s-]+/g, ' ')
    .trim();
  return key === '' ? null : key;
}

/** The canonical spelling of a raw country value; null when the value is missing. */
export function canonicalCountry(raw: string | null | undefined): string | null {
  const key = countryKey(raw);
  if (key === null) return null;
  return countryAliases[key] ?? (raw as string).trim();
}

/**
 * The same rule in DuckDB SQL, for an expression `expr`: the key expression must equal
 * `countryKey` exactly (tested), and the alias table is `countryAliasesValuesSql()`.
 */
export function countryKeySql(expr: string): string {
  return `nullif(trim(regexp_replace(lower(replace(trim(${expr}), '.', '')), '[\\s-]+', ' ', 'g')), '')`;
}

/** `(VALUES ('usa','United States'), …) AS t(alias_key, country)` for joins in SQL. */
export function countryAliasesValuesSql(alias = 'country_aliases'): string {
  const rows = Object.entries(countryAliases).map(
    ([key, country]) => `(${quoteLiteral(key)}, ${quoteLiteral(country)})`,
  );
  return `(VALUES ${rows.join(', ')}) AS ${alias}(alias_key, country)`;
}

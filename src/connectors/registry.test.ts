import { describe, expect, it } from 'vitest';
import {
  connectorDocs,
  connectorJsonSchema,
  connectors,
  getConnector,
  parseConnectorOptions,
} from './index.js';

describe('connector registry', () => {
  it('lists every connector once with an options schema that exports to JSON Schema', () => {
    const names = connectors().map((c) => c.name);
    expect(names).toEqual([
      'spool',
      'file-import',
      'http-poller',
      'postgres',
      'http-ingest',
      'postgres-upsert',
    ]);
    for (const name of names) {
      const schema = connectorJsonSchema(name);
      expect(schema.type, name).toBe('object');
      expect(Object.keys(schema.properties as object).length, name).toBeGreaterThan(2);
    }
  });

  it('validates options through the same schema and names every problem', () => {
    expect(parseConnectorOptions('spool', { dir: '/in', topic: 't' })).toMatchObject({
      stableMs: 1000,
      onComplete: 'rename',
    });
    expect(() =>
      parseConnectorOptions('http-poller', { url: 'ftp://x', topic: '', ratePerSecond: -1 }),
    ).toThrow(/http-poller options: url: .*; topic: .*; ratePerSecond: /);
    expect(() => parseConnectorOptions('postgres', { table: 'orders', mode: 'incremental' })).toThrow(
      /cursorColumn: mode incremental needs cursorColumn/,
    );
    expect(() => getConnector('kafka-connect')).toThrow(/unknown connector kafka-connect; connectors: spool/);
  });

  it('generates README markdown with a table row for every option of every connector', () => {
    const docs = connectorDocs();
    for (const connector of connectors()) {
      expect(docs).toContain(`(\`${connector.name}\`, ${connector.kind})`);
      for (const option of Object.keys(connectorJsonSchema(connector.name).properties as object))
        expect(docs).toContain(`| \`${option}\` |`);
    }
    expect(docs).toContain(
      '| `pagination` | object with `type`: `none` \\| `page` \\| `cursor` \\| `link` |',
    );
    expect(docs).toContain('| `pagination (type=cursor).nextCursorPath` | string | yes |');
  });
});

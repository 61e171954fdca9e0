import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { DuckDBInstance } from '@duckdb/node-api';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig, rootLogger } from '../../../src/core/index.js';
import { createSpoolSource } from '../../../src/connectors/index.js';
import { LocalStorage, openLake, type Lake } from '../../../src/lake/index.js';
import { createMemoryLog, murmur2, type Log } from '../../../src/log/index.js';
import {
  generateViewing,
  refreshViewingGold,
  toCsv,
  toNdjson,
  viewingSpoolOptions,
  viewingTables as tables,
  viewingTopics as topics,
  viewingValidateJob,
  type RawEvent,
} from '../../../src/pipelines/viewing/index.js';
import { openSqlEngine, type SqlEngine } from '../../../src/sql/index.js';
import { runJob } from '../../../src/stream/index.js';
import { createApp, KeyStore, startServer } from '../../../src/serve/index.js';
import { viewingPipeline } from '../../../src/pipelines/viewing/index.js';
import { pipelineAppOptions, type PipelineServices } from '../../../src/pipelines/index.js';

const logger = rootLogger.child({}, { level: 'silent' });
const now = Date.now();

let dir: string;
let spool: string;
let lake: Lake;
let sql: SqlEngine;
let log: Log;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tributary-viewing-'));
  spool = path.join(dir, 'spool');
  await mkdir(spool);
  lake = await openLake({ storage: new LocalStorage(path.join(dir, 'lake')) });
  sql = await openSqlEngine(lake);
  log = createMemoryLog();
  await log.createTopic(topics.events, { partitions: 4 });
});
afterEach(async () => {
  sql.close();
  await lake.close();
  await rm(dir, { recursive: true, force: true });
});

async function ingest(): Promise<void> {
  await createSpoolSource({ ...viewingSpoolOptions(spool), stableMs: 0 }, { log, logger }).poll();
  await runJob(viewingValidateJob({ log, lake }), { dataDir: path.join(dir, 'state'), once: true });
  await refreshViewingGold(lake, `test-${Date.now()}`);
}

/** The same set as three files: CSV, gzipped JSON lines, and a JSON array. */
async function writeFiles(records: RawEvent[]): Promise<void> {
  const third = Math.ceil(records.length / 3);
  await writeFile(path.join(spool, 'a-events.csv'), toCsv(records.slice(0, third)));
  await writeFile(path.join(spool, 'b-events.jsonl.gz'), gzipSync(toNdjson(records.slice(third, 2 * third))));
  await writeFile(path.join(spool, 'c-events.json'), JSON.stringify(records.slice(2 * third)));
}

/** Plain SQL over the generator's valid events, loaded into a fresh DuckDB: the expected gold. */
async function expectedGold(valid: RawEvent[]) {
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  const file = path.join(dir, 'truth.json');
  await writeFile(file, JSON.stringify(valid));
  await connection.run(`CREATE TABLE e AS SELECT event_id, user_id, show_id, show_title, show_type, event_type,
      CAST(event_ts AS TIMESTAMPTZ) AT TIME ZONE 'UTC' AS ts, CAST(watch_seconds AS DOUBLE) AS w, device, country,
      CAST(rating AS INTEGER) AS rating, session_id FROM read_json('${file}', format = 'array', columns = {
        event_id: 'VARCHAR', user_id: 'VARCHAR', show_id: 'VARCHAR', show_title: 'VARCHAR', show_type: 'VARCHAR',
        event_type: 'VARCHAR', event_ts: 'VARCHAR', watch_seconds: 'DOUBLE', device: 'VARCHAR', country: 'VARCHAR',
        rating: 'INTEGER', session_id: 'VARCHAR'})`);
  const all = async (text: string) => (await connection.runAndReadAll(text)).getRowObjectsJson();
  const result = {
    shows: await all(`SELECT show_id, sum(CASE WHEN event_type='play' THEN 1 ELSE 0 END) AS plays,
        count(DISTINCT CASE WHEN event_type='play' THEN user_id END) AS viewers,
        round(sum(w) / 3600, 9) AS watch_hours,
        sum(CASE WHEN event_type='complete' THEN 1 ELSE 0 END) AS completions,
        round(avg(CASE WHEN event_type='rate' THEN rating END), 9) AS avg_rating
      FROM e GROUP BY 1 ORDER BY 1`),
    daily:
      await all(`SELECT CAST(CAST(ts AS DATE) AS VARCHAR) AS d, show_type, count(DISTINCT user_id) AS active,
        round(sum(w) / 3600, 9) AS hours, sum(CASE WHEN event_type='play' THEN 1 ELSE 0 END) AS plays
      FROM e GROUP BY 1, 2 ORDER BY 1, 2`),
    devices: await all(
      `SELECT device, count(DISTINCT user_id) AS users, round(sum(w) / 3600, 9) AS hours FROM e GROUP BY 1 ORDER BY 1`,
    ),
  };
  // Sessions, computed in JS: ids as given, gaps of 30 minutes for events without one.
  const sessions = new Map<string, number>();
  const byUser = new Map<string, RawEvent[]>();
  for (const e of valid) byUser.set(String(e.user_id), [...(byUser.get(String(e.user_id)) ?? []), e]);
  for (const [user, list] of byUser) {
    const ids = new Set(list.filter((e) => e.session_id !== null).map((e) => e.session_id));
    const times = list
      .filter((e) => e.session_id === null)
      .map((e) => Date.parse(String(e.event_ts)))
      .sort((a, b) => a - b);
    let gaps = 0;
    times.forEach((t, i) => {
      if (i === 0 || t - times[i - 1] >= 30 * 60_000) gaps++;
    });
    sessions.set(user, ids.size + gaps);
  }
  connection.closeSync();
  instance.closeSync();
  return { ...result, sessions };
}

describe('viewing pipeline: golden run over CSV, JSON lines and a JSON array', () => {
  it('quarantines exactly the injected bad records, drops duplicates, and gold matches plain SQL over the input', async () => {
    const set = generateViewing({ users: 50, days: 10, seed: 42, endMs: now });
    await writeFiles(set.records);
    await ingest();

    const reasons = await sql.query(
      `SELECT reason, count(*) AS n FROM ${tables.quarantine} GROUP BY 1 ORDER BY 1`,
    );
    expect(Object.fromEntries(reasons.map((r) => [r.reason, Number(r.n)]))).toEqual(set.quarantined);
    const [counts] = await sql.query(`SELECT (SELECT count(*) FROM ${tables.bronze}) AS valid,
        (SELECT count(*) FROM ${tables.duplicates}) AS duplicates, (SELECT count(*) FROM ${tables.quarantine}) AS quarantined`);
    const quarantined = Object.values(set.quarantined).reduce((a: number, b) => a + (b ?? 0), 0);
    expect(counts).toEqual({ valid: set.valid.length, duplicates: set.duplicates, quarantined });
    expect(set.valid.length + set.duplicates + quarantined).toBe(set.records.length);

    // Bronze is laid out by event_date / show_type / user_bucket (the log's murmur2, mod 16).
    const layout = await sql.query(`SELECT DISTINCT user_id, user_bucket FROM ${tables.bronze}`);
    for (const row of layout) {
      expect(Number(row.user_bucket)).toBe((murmur2(Buffer.from(String(row.user_id))) & 0x7fffffff) % 16);
    }
    const firstDay = String(
      (await sql.query(`SELECT CAST(min(event_date) AS VARCHAR) AS d FROM ${tables.bronze}`))[0].d,
    );
    const dayDir = path.join(dir, 'lake', 'bronze', 'viewing_events', `event_date=${firstDay}`);
    expect(
      (await readdir(dayDir)).some((d) => /^show_type=(movie|series|documentary|special)$/.test(d)),
    ).toBe(true);

    const expected = await expectedGold(set.valid);
    const shows =
      await sql.query(`SELECT show_id, plays, viewers, round(watch_hours, 9) AS watch_hours, completions,
        round(avg_rating, 9) AS avg_rating, completion_rate FROM ${tables.showEngagement} ORDER BY show_id`);
    expect(
      shows.map((r) => ({
        show_id: r.show_id,
        plays: Number(r.plays),
        viewers: Number(r.viewers),
        watch_hours: Number(r.watch_hours),
        completions: Number(r.completions),
        avg_rating: r.avg_rating === null ? null : Number(r.avg_rating),
      })),
    ).toEqual(
      expected.shows.map((r) => ({
        show_id: r.show_id,
        plays: Number(r.plays),
        viewers: Number(r.viewers),
        watch_hours: Number(r.watch_hours),
        completions: Number(r.completions),
        avg_rating: r.avg_rating === null ? null : Number(r.avg_rating),
      })),
    );
    for (const r of shows) {
      expect(Number(r.completion_rate)).toBeCloseTo(
        Number(r.plays) === 0 ? 0 : Number(r.completions) / Number(r.plays),
        12,
      );
    }
    const daily =
      await sql.query(`SELECT CAST(event_date AS VARCHAR) AS d, show_type, active_users, round(watch_hours, 9) AS hours, plays
        FROM ${tables.dailyEngagement} ORDER BY 1, 2`);
    expect(
      daily.map((r) => [r.d, r.show_type, Number(r.active_users), Number(r.hours), Number(r.plays)]),
    ).toEqual(
      expected.daily.map((r) => [r.d, r.show_type, Number(r.active), Number(r.hours), Number(r.plays)]),
    );
    const devices = await sql.query(
      `SELECT device, users, round(watch_hours, 9) AS hours FROM ${tables.deviceMix} ORDER BY 1`,
    );
    expect(devices.map((r) => [r.device, Number(r.users), Number(r.hours)])).toEqual(
      expected.devices.map((r) => [r.device, Number(r.users), Number(r.hours)]),
    );
    const users = await sql.query(`SELECT user_id, sessions FROM ${tables.userActivity}`);
    expect(Object.fromEntries(users.map((r) => [r.user_id, Number(r.sessions)]))).toEqual(
      Object.fromEntries(expected.sessions),
    );

    const also = await sql.query(`SELECT * FROM ${tables.alsoWatched} WHERE rank = 1 LIMIT 5`);
    expect(also.length).toBeGreaterThan(0);
    for (const r of also) expect(Number(r.co_viewers)).toBeGreaterThan(0);

    // Re-ingesting the same files (under new names) changes no table, the quarantine included.
    const before = await sql.query(
      `SELECT (SELECT count(*) FROM ${tables.bronze}) AS b, (SELECT count(*) FROM ${tables.quarantine}) AS q`,
    );
    await rm(spool, { recursive: true });
    await mkdir(spool);
    await writeFiles(set.records);
    await ingest();
    expect(
      await sql.query(
        `SELECT (SELECT count(*) FROM ${tables.bronze}) AS b, (SELECT count(*) FROM ${tables.quarantine}) AS q`,
      ),
    ).toEqual(before);
    expect(Number((await sql.query(`SELECT count(*) AS n FROM ${tables.duplicates}`))[0].n)).toBe(
      set.duplicates + set.records.length,
    );
  });

  it('serves filtered top shows, a show with its daily series and also-watched, users, quality; accepts the JSON stream', async () => {
    const set = generateViewing({ users: 30, days: 8, seed: 7, endMs: now });
    await writeFiles(set.records);
    await ingest();
    const keys = KeyStore.open(path.join(dir, 'keys.json'));
    const readKey = (await keys.create({ scopes: ['read'] })).key;
    const ingestKey = (await keys.create({ scopes: ['ingest'] })).key;
    // Built as `tributary up` builds it.
    const services: PipelineServices = {
      config: loadConfig({ env: {}, dotenv: false, cwd: dir, overrides: { dataDir: dir } }),
      log,
      lake,
      query: (text, params) => sql.query(text, params),
      publish: () => undefined,
    };
    const api = createApp({
      keys,
      ...pipelineAppOptions({ definitions: [viewingPipeline], services, sql }),
      statusTickMs: 0,
      ui: false,
    });
    const server = await startServer(api.app);
    const call = async (
      route: string,
      init: { key?: string | null; method?: string; body?: string; type?: string } = {},
    ) => {
      const key = init.key === undefined ? readKey : init.key;
      const response = await fetch(`${server.url}${route}`, {
        method: init.method ?? 'GET',
        headers: {
          ...(key === null ? {} : { authorization: `Bearer ${key}` }),
          ...(init.type === undefined ? {} : { 'content-type': init.type }),
        },
        ...(init.body === undefined ? {} : { body: init.body }),
      });
      return {
        status: response.status,
        body: (await response.json()) as Record<string, unknown> & { rows: Record<string, unknown>[] },
      };
    };
    try {
      expect((await call('/api/viewing/shows/top', { key: null })).status).toBe(401);
      const top = await call('/api/viewing/shows/top?limit=3');
      expect(top.body.rows).toHaveLength(3);
      const hours = top.body.rows.map((r) => Number(r.watch_hours));
      expect([...hours].sort((a, b) => b - a)).toEqual(hours);
      const movies = await call('/api/viewing/shows/top?show_type=movie&device=tv&country=us&limit=50');
      expect(movies.status).toBe(200);
      expect(movies.body.rows.every((r) => r.show_type === 'movie')).toBe(true);
      const [expected] = await sql.query(
        `SELECT count(DISTINCT show_id) AS n FROM ${tables.bronze} WHERE show_type = 'movie' AND device = 'tv' AND country = 'US'`,
      );
      expect(movies.body.rows).toHaveLength(Number(expected.n));
      expect((await call('/api/viewing/shows/top?country=USA')).status).toBe(400);
      expect((await call('/api/viewing/shows/top?from=yesterday')).status).toBe(400);
      const show = await call(`/api/viewing/shows/${String(top.body.rows[0].show_id)}`);
      expect(show.status).toBe(200);
      expect((show.body.daily as unknown[]).length).toBeGreaterThan(0);
      expect(Array.isArray(show.body.also_watched)).toBe(true);
      expect((await call('/api/viewing/shows/nope')).status).toBe(404);
      const user = await call(`/api/viewing/users/${String(set.valid[0].user_id)}`);
      expect(Number(user.body.sessions)).toBeGreaterThan(0);
      const quality = await call('/api/viewing/quality');
      const quarantined = Object.values(set.quarantined).reduce((a: number, b) => a + (b ?? 0), 0);
      expect(quality.body).toMatchObject({
        in: set.records.length,
        valid: set.valid.length,
        quarantined,
        duplicates: set.duplicates,
      });
      expect(quality.body.score).toBeCloseTo(set.valid.length / set.records.length, 12);
      expect((await call('/api/viewing/daily?show_type=series')).body.rows.length).toBeGreaterThan(0);

      // The JSON stream: NDJSON and JSON arrays, ingest scope, answered after the append.
      const fresh = generateViewing({
        users: 2,
        days: 1,
        seed: 99,
        endMs: now,
        badPerReason: 0,
        duplicates: 0,
      }).valid.slice(0, 4);
      expect(
        (
          await call('/api/viewing/events', {
            method: 'POST',
            body: toNdjson(fresh),
            type: 'application/x-ndjson',
          })
        ).status,
      ).toBe(403);
      const posted = await call('/api/viewing/events', {
        key: ingestKey,
        method: 'POST',
        body: toNdjson(fresh.slice(0, 2)),
        type: 'application/x-ndjson',
      });
      expect(posted).toEqual({ status: 202, body: { appended: 2 } });
      const array = await call('/api/viewing/events', {
        key: ingestKey,
        method: 'POST',
        body: JSON.stringify(fresh),
        type: 'application/json',
      });
      expect(array.body).toEqual({ appended: 4 });
      expect(
        (
          await call('/api/viewing/events', {
            key: ingestKey,
            method: 'POST',
            body: '{not json',
            type: 'application/x-ndjson',
          })
        ).status,
      ).toBe(400);
      await ingest();
      const after = await call('/api/viewing/quality');
      // 6 posted: 4 new valid events, 2 repeats of event ids already seen.
      expect(after.body).toMatchObject({ valid: set.valid.length + 4, duplicates: set.duplicates + 2 });
    } finally {
      await api.close();
      await server.close(100);
    }
  });
});

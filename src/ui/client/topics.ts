/**
 * The topic view (`#/topics`, `#/topics/<name>`): the log's topics and the latest records of one,
 * from the admin topics API. Values are shown as the API gives them: UTF-8 text, JSON pretty-printed,
 * and Avro values (Confluent wire format) already decoded to JSON by the server through the schema
 * registry.
 */
import { ApiError, apiGet } from './api.js';
import { h } from './dom.js';
import { formatValue } from './format.js';

interface TopicDescription {
  name: string;
  partitions: { partition: number; startOffset: number; endOffset: number; sizeBytes: number }[];
}
interface TopicRecord {
  partition: number;
  offset: number;
  timestamp: number;
  key: string | null;
  value: string | null;
}

/** Records shown per partition (the newest ones). */
const recordsPerPartition = 25;
const valueCharsMax = 400;

function valueText(value: string | null): string {
  if (value === null) return 'null';
  let text = value;
  try {
    text = JSON.stringify(JSON.parse(value));
  } catch {
    // Plain text: shown as is.
  }
  return text.length > valueCharsMax ? `${text.slice(0, valueCharsMax)}…` : text;
}

/** Renders the view into `main`; `isCurrent` tells whether the user navigated away meanwhile. */
export async function renderTopics(
  main: HTMLElement,
  topic: string | null,
  isCurrent: () => boolean,
): Promise<void> {
  let topics: string[];
  try {
    topics = (await apiGet<{ topics: string[] }>('/api/topics')).topics;
  } catch (error) {
    if (error instanceof ApiError && (error.status === 403 || error.status === 404)) {
      main.replaceChildren(
        h('h1', {}, 'Topics'),
        h(
          'div',
          { class: 'card' },
          h('p', {}, `The topic view needs an admin key bound to no tenant (${error.message}).`),
        ),
      );
      return;
    }
    throw error;
  }
  const list = h(
    'ul',
    { class: 'topic-list', id: 'topic-list' },
    ...topics.map((name) =>
      h(
        'li',
        {},
        h(
          'a',
          { href: `#/topics/${encodeURIComponent(name)}`, class: name === topic ? 'active' : undefined },
          name,
        ),
      ),
    ),
  );
  const children: Node[] = [
    h('h1', {}, topic === null ? 'Topics' : `Topic ${topic}`),
    h('section', { class: 'card' }, list),
  ];
  if (topic !== null) {
    const description = await apiGet<TopicDescription>(`/api/topics/${encodeURIComponent(topic)}`);
    const pages = await Promise.all(
      description.partitions.map(async (p) => {
        const from = Math.max(p.startOffset, p.endOffset - recordsPerPartition);
        if (from >= p.endOffset) return [];
        const body = await apiGet<{ records: TopicRecord[] }>(
          `/api/topics/${encodeURIComponent(topic)}/partitions/${p.partition}/records?offset=${from}&limit=${recordsPerPartition}`,
        );
        return body.records;
      }),
    );
    const records = pages.flat().sort((a, b) => b.timestamp - a.timestamp || a.partition - b.partition);
    children.push(
      h(
        'section',
        { class: 'card' },
        h('h2', {}, `Latest records (${recordsPerPartition} per partition)`),
        h(
          'div',
          { class: 'table-wrap' },
          h(
            'table',
            { id: 'topic-records' },
            h(
              'thead',
              {},
              h('tr', {}, ...['Partition', 'Offset', 'Time', 'Key', 'Value'].map((t) => h('th', {}, t))),
            ),
            h(
              'tbody',
              {},
              ...(records.length > 0
                ? records.map((r) =>
                    h(
                      'tr',
                      {},
                      h('td', {}, String(r.partition)),
                      h('td', {}, String(r.offset)),
                      h('td', {}, formatValue(r.timestamp, 'time')),
                      h('td', {}, r.key ?? '—'),
                      h('td', {}, h('code', { class: 'record-value' }, valueText(r.value))),
                    ),
                  )
                : [h('tr', {}, h('td', { colspan: 5, class: 'muted' }, 'no records'))]),
            ),
          ),
        ),
      ),
    );
  }
  if (isCurrent()) main.replaceChildren(...children);
}

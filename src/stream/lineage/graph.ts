/**
 * The lineage graph, built from run events: sources, topics and tables are dataset nodes, jobs are
 * job nodes; an edge goes from each input dataset to the job and from the job to each output.
 * A job's datasets are those of its latest run (the union over that run's events), so a job whose
 * inputs changed shows its current shape; its state is the latest event's type.
 */
import { open, readdir } from 'node:fs/promises';
import path from 'node:path';
import {
  datasetUri,
  decodeLineageLine,
  lakeNamespace,
  topicNamespace,
  type LineageDataset,
  type LineageEventType,
  type LineageRunEvent,
  type SchemaField,
} from './event.js';
import { lineageDir } from './emitter.js';

export type LineageNodeKind = 'source' | 'topic' | 'job' | 'table';

export interface LineageNode {
  /** Dataset URI (`tributary://lake/gold.kpi_summary`) or `job:<namespace>/<name>`. */
  id: string;
  kind: LineageNodeKind;
  namespace: string;
  name: string;
  /** Datasets: the latest schema facet's fields. */
  fields?: SchemaField[];
  /** Jobs: the latest event of the latest run. */
  state?: LineageEventType;
  processingType?: string;
  runId?: string;
  lastEventTime?: string;
}

export interface LineageEdge {
  from: string;
  to: string;
}

export interface LineageGraph {
  nodes: LineageNode[];
  edges: LineageEdge[];
  /** Events the graph was built from. */
  events: number;
}

interface JobEntry {
  node: LineageNode;
  inputs: Set<string>;
  outputs: Set<string>;
}

export function datasetKind(namespace: string): LineageNodeKind {
  if (namespace === topicNamespace) return 'topic';
  if (namespace === lakeNamespace) return 'table';
  return 'source';
}

export class LineageGraphBuilder {
  readonly #jobs = new Map<string, JobEntry>();
  readonly #datasets = new Map<string, LineageNode>();
  #events = 0;

  add(event: LineageRunEvent): void {
    this.#events += 1;
    const id = `job:${event.job.namespace}/${event.job.name}`;
    let entry = this.#jobs.get(id);
    const newer = entry === undefined || (entry.node.lastEventTime ?? '') <= event.eventTime;
    if (entry === undefined || (entry.node.runId !== event.run.runId && newer)) {
      const jobType = event.job.facets?.jobType as { processingType?: string } | undefined;
      entry = {
        node: {
          id,
          kind: 'job',
          namespace: event.job.namespace,
          name: event.job.name,
          ...(jobType?.processingType === undefined ? {} : { processingType: jobType.processingType }),
          runId: event.run.runId,
        },
        inputs: new Set(),
        outputs: new Set(),
      };
      this.#jobs.set(id, entry);
    } else if (entry.node.runId !== event.run.runId) {
      // An older run's late event: its datasets no longer describe the job.
      for (const d of [...event.inputs, ...event.outputs]) this.#dataset(d);
      return;
    }
    if (newer) {
      entry.node.state = event.eventType;
      entry.node.lastEventTime = event.eventTime;
    }
    for (const d of event.inputs) entry.inputs.add(this.#dataset(d).id);
    for (const d of event.outputs) entry.outputs.add(this.#dataset(d).id);
  }

  #dataset(dataset: LineageDataset): LineageNode {
    const id = datasetUri(dataset);
    let node = this.#datasets.get(id);
    if (node === undefined) {
      node = { id, kind: datasetKind(dataset.namespace), namespace: dataset.namespace, name: dataset.name };
      this.#datasets.set(id, node);
    }
    const fields = dataset.facets?.schema?.fields;
    if (Array.isArray(fields)) node.fields = fields;
    return node;
  }

  graph(): LineageGraph {
    const edges: LineageEdge[] = [];
    const used = new Set<string>();
    for (const entry of this.#jobs.values()) {
      for (const input of entry.inputs) {
        edges.push({ from: input, to: entry.node.id });
        used.add(input);
      }
      for (const output of entry.outputs) {
        edges.push({ from: entry.node.id, to: output });
        used.add(output);
      }
    }
    const nodes = [
      ...[...this.#datasets.values()].filter((n) => used.has(n.id)),
      ...[...this.#jobs.values()].map((e) => e.node),
    ]
      .map((n) => ({ ...n }))
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    edges.sort((a, b) => (a.from + a.to < b.from + b.to ? -1 : 1));
    return { nodes, edges, events: this.#events };
  }
}

/**
 * Reads the lineage files of a data dir incrementally: each call reads only the bytes appended
 * since the last one (complete lines), so serving the graph stays cheap as files grow.
 */
export class LineageGraphReader {
  readonly #dir: string;
  readonly #builder = new LineageGraphBuilder();
  readonly #offsets = new Map<string, number>();
  #reading: Promise<LineageGraph> | null = null;

  constructor(dataDir: string) {
    this.#dir = lineageDir(dataDir);
  }

  /** The graph over every event written so far; concurrent callers share one read. */
  graph(): Promise<LineageGraph> {
    this.#reading ??= this.#read().finally(() => {
      this.#reading = null;
    });
    return this.#reading;
  }

  async #read(): Promise<LineageGraph> {
    let names: string[];
    try {
      names = (await readdir(this.#dir)).filter((n) => n.endsWith('.ndjson')).sort();
    } catch {
      names = [];
    }
    for (const name of names) await this.#readNew(name);
    return this.#builder.graph();
  }

  async #readNew(name: string): Promise<void> {
    const file = path.join(this.#dir, name);
    let handle;
    try {
      handle = await open(file, 'r');
    } catch {
      return; // removed by rotation meanwhile
    }
    try {
      const start = this.#offsets.get(name) ?? 0;
      const { size } = await handle.stat();
      if (size <= start) return;
      const buffer = Buffer.alloc(size - start);
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, start);
      const text = buffer.subarray(0, bytesRead);
      const end = text.lastIndexOf(0x0a);
      if (end < 0) return; // only a partial line so far
      for (const line of text.subarray(0, end).toString('utf8').split('\n')) {
        const event = decodeLineageLine(line);
        if (event !== null) this.#builder.add(event);
      }
      this.#offsets.set(name, start + end + 1);
    } finally {
      await handle.close();
    }
  }
}

/** The graph of a data dir's lineage files (one full read). */
export function readLineageGraph(dataDir: string): Promise<LineageGraph> {
  return new LineageGraphReader(dataDir).graph();
}

import { z } from 'zod';
import { TributaryError } from '../core/index.js';
import type { LineageGraph } from '../stream/index.js';
import type { PipelineModule } from './types.js';

/** Where the graph comes from: `new LineageGraphReader(dataDir)` (reads `<dataDir>/lineage/`). */
export interface LineageGraphSource {
  graph(): Promise<LineageGraph>;
}

const nodeSchema = z.object({
  id: z.string(),
  kind: z.enum(['source', 'topic', 'job', 'table']),
  namespace: z.string(),
  name: z.string(),
  fields: z.array(z.object({ name: z.string(), type: z.string() })).optional(),
  state: z.string().optional(),
  processingType: z.string().optional(),
  runId: z.string().optional(),
  lastEventTime: z.string().optional(),
});

const graphSchema = z.object({
  nodes: z.array(nodeSchema),
  edges: z.array(z.object({ from: z.string(), to: z.string() })),
  events: z.number(),
});

/**
 * `GET /api/lineage` (the graph built from the OpenLineage run events every batch run and stream
 * job writes, src/stream/lineage) and the dashboard's Lineage page, which draws it left to right:
 * source → topic → job → table. Platform keys only: the graph names every pipeline's datasets.
 *
 * @example createApp({ ..., pipelines: [...modules, lineageModule(new LineageGraphReader(dataDir))] })
 */
export function lineageModule(source: LineageGraphSource): PipelineModule {
  return {
    name: 'lineage',
    title: 'Lineage',
    description: 'Datasets and jobs from the OpenLineage run events of every batch run and stream job',
    routes(api) {
      api.route({
        method: 'get',
        path: '/api/lineage',
        summary: 'Lineage graph: sources, topics, jobs and tables, with edges input → job → output',
        description:
          'Built from the OpenLineage run events under `<dataDir>/lineage/` (each job shows its latest run). ' +
          'Node ids are dataset URIs (`tributary://topic/<name>`, `tributary://lake/<layer>.<table>`) or `job:<namespace>/<name>`.',
        tags: ['lineage'],
        scope: 'read',
        responses: { 200: { description: 'graph', schema: graphSchema } },
        handler: async ({ auth }) => {
          if (auth?.tenant !== undefined)
            throw new TributaryError(
              'FORBIDDEN',
              `the lineage graph spans every tenant; key ${auth.keyId} is bound to tenant ${JSON.stringify(auth.tenant)}`,
            );
          return source.graph();
        },
      });
    },
    page: {
      id: 'lineage',
      title: 'Lineage',
      description:
        'Where data comes from and where it goes: source → topic → job → table (latest run of each job).',
      tiles: [
        {
          id: 'lineage-events',
          label: 'Run events',
          source: { route: '/api/lineage', field: 'events' },
          format: 'integer',
        },
      ],
      charts: [],
      graphs: [{ id: 'lineage-graph', title: 'Lineage graph', route: '/api/lineage' }],
    },
  };
}

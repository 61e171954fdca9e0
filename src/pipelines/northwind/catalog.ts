import { createEmbedder, llmConfigOf, RetrievalIndex, retrievalIndexDir } from '../../ml/index.js';
import type { BatchJob } from '../../stream/index.js';
import type { PipelineServices } from '../types.js';
import { latestPartitionOf } from './sql.js';

export const catalogIndexJobName = 'northwind.catalog_index';

/**
 * The product catalogue as a retrieval index (`index/northwind/`): one passage per product (name,
 * category and its description, packaging, price, whether it is still sold), filterable by
 * `category`, so `tributary ask --pipeline northwind "Which products come in bottles?"` or
 * `POST /api/northwind/ask` answers from the catalogue with citations.
 */
const indexes = new WeakMap<Pick<PipelineServices, 'config'>, RetrievalIndex>();
export function catalogIndex(services: Pick<PipelineServices, 'config'>): RetrievalIndex {
  let index = indexes.get(services);
  if (index === undefined) {
    index = new RetrievalIndex({
      dir: retrievalIndexDir(services.config.dataDir, 'northwind'),
      embedder: createEmbedder(services.config),
      schema: {
        citationId: 'passage_id',
        citationFields: ['product_id', 'category'],
        noMatchAnswer: 'There is no product in category {category}.',
      },
      llm: llmConfigOf(services.config),
    });
    indexes.set(services, index);
  }
  return index;
}

/** Rebuilds the catalogue index from the latest bronze snapshot, after each bronze run. */
export function catalogIndexJob(services: Pick<PipelineServices, 'config' | 'query'>): BatchJob {
  return {
    name: catalogIndexJobName,
    description: 'Index the product catalogue (latest bronze.products and bronze.categories) for questions',
    inputs: ['bronze.products', 'bronze.categories'],
    dependsOn: ['northwind.bronze'],
    schedule: '0 2 * * *',
    partitionFor: () => null,
    async run() {
      const rows = await services.query(
        `SELECT p.product_id, p.product_name, p.quantity_per_unit, p.unit_price, p.discontinued,
                c.category_name, c.description
         FROM ${latestPartitionOf('bronze.products')} AS p
         LEFT JOIN ${latestPartitionOf('bronze.categories')} AS c USING (category_id)
         ORDER BY p.product_id`,
      );
      const index = catalogIndex(services);
      await index.upsert(
        rows.map((r) => {
          const category = typeof r.category_name === 'string' ? r.category_name : 'Uncategorised';
          const sold = Number(r.discontinued) === 1 ? 'Discontinued.' : 'Still sold.';
          return {
            id: `product-${String(r.product_id)}`,
            text: `${String(r.product_name)} is a ${category} product${typeof r.description === 'string' ? ` (${r.description})` : ''}, packed as ${typeof r.quantity_per_unit === 'string' ? r.quantity_per_unit : 'unknown packaging'}, ${Number(r.unit_price).toFixed(2)} per unit. ${sold}`,
            metadata: { product_id: Number(r.product_id), category },
          };
        }),
      );
      await index.save();
      return { rowsIn: rows.length, rowsOut: rows.length };
    },
  };
}

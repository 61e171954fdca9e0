import { visibleTo } from './events.js';

/** Metric labels that name a tenant (documents' `company_id`, …). */
export const tenantLabelNames = ['company_id', 'company', 'tenant'] as const;

const tenantLabel = new RegExp(`[{,](?:${tenantLabelNames.join('|')})="([^"]*)"`);

/**
 * The Prometheus text exposition as one caller may see it: samples labelled with a tenant are
 * kept only for an unbound key (all of them) or a key bound to that tenant; a caller without a key
 * (public /metrics) sees none of them, so company ids never leave without a key. Lines without a
 * tenant label (HELP, TYPE, platform metrics) are kept.
 *
 * @example
 * c.body(metricsVisibleTo(await registry.metrics(), auth), 200)
 */
export function metricsVisibleTo(text: string, auth: { tenant?: string | undefined } | undefined): string {
  if (auth !== undefined && auth.tenant === undefined) return text;
  return text
    .split('\n')
    .filter((line) => {
      if (line.startsWith('#')) return true;
      const tenant = tenantLabel.exec(line)?.[1];
      return tenant === undefined || (auth !== undefined && visibleTo(tenant, auth.tenant));
    })
    .join('\n');
}

/**
 * The lineage graph as SVG: nodes in columns by depth (longest path from a node without inputs),
 * so data flows left to right — source → topic → job → table → job → table …; each kind has its
 * colour and shape (jobs are rounded, datasets square), edges are curves from output to input.
 */
import { s } from './dom.js';

export interface GraphNode {
  id: string;
  kind: 'source' | 'topic' | 'job' | 'table';
  name: string;
  state?: string;
}

export interface GraphData {
  nodes: GraphNode[];
  edges: { from: string; to: string }[];
}

const kindColors: Record<GraphNode['kind'], string> = {
  source: '#7c3aed',
  topic: '#0891b2',
  job: '#2563eb',
  table: '#059669',
};
const stateColors: Record<string, string> = { FAIL: '#dc2626', ABORT: '#d97706' };

const nodeWidth = 190;
const nodeHeight = 34;
const columnGap = 70;
const rowGap = 16;
const margin = 12;

/** Depth of every node: 0 without inputs, else 1 + the deepest input (cycles are cut). */
export function depths(graph: GraphData): Map<string, number> {
  const inputs = new Map<string, string[]>();
  for (const e of graph.edges) inputs.set(e.to, [...(inputs.get(e.to) ?? []), e.from]);
  const depth = new Map<string, number>();
  const visiting = new Set<string>();
  const visit = (id: string): number => {
    const known = depth.get(id);
    if (known !== undefined) return known;
    if (visiting.has(id)) return 0;
    visiting.add(id);
    let d = 0;
    for (const from of inputs.get(id) ?? []) d = Math.max(d, visit(from) + 1);
    visiting.delete(id);
    depth.set(id, d);
    return d;
  };
  for (const n of graph.nodes) visit(n.id);
  return depth;
}

function label(text: string): string {
  return text.length > 26 ? `${text.slice(0, 25)}…` : text;
}

export function drawLineage(graph: GraphData, title: string): SVGSVGElement {
  const depth = depths(graph);
  const columns: GraphNode[][] = [];
  const kindOrder = { source: 0, topic: 1, job: 2, table: 3 };
  for (const node of graph.nodes) (columns[depth.get(node.id) ?? 0] ??= []).push(node);
  for (const column of columns)
    column?.sort((a, b) => kindOrder[a.kind] - kindOrder[b.kind] || a.name.localeCompare(b.name));
  const rows = Math.max(1, ...columns.map((c) => c?.length ?? 0));
  const width = margin * 2 + Math.max(1, columns.length) * (nodeWidth + columnGap) - columnGap;
  const height = margin * 2 + rows * (nodeHeight + rowGap) - rowGap + 24;
  const svg = s('svg', {
    viewBox: `0 0 ${width} ${height}`,
    class: 'chart chart-lineage',
    role: 'img',
    'aria-label': title,
    'data-nodes': graph.nodes.length,
    'data-edges': graph.edges.length,
  });
  svg.append(s('title', {}, title));
  if (graph.nodes.length === 0) {
    svg.append(
      s('text', { x: width / 2, y: height / 2, 'text-anchor': 'middle', fill: '#4b5563' }, 'no lineage yet'),
    );
    return svg;
  }
  const position = new Map<string, { x: number; y: number }>();
  columns.forEach((column, c) => {
    (column ?? []).forEach((node, r) => {
      position.set(node.id, {
        x: margin + c * (nodeWidth + columnGap),
        y: margin + r * (nodeHeight + rowGap),
      });
    });
  });
  for (const edge of graph.edges) {
    const a = position.get(edge.from);
    const b = position.get(edge.to);
    if (!a || !b) continue;
    const x1 = a.x + nodeWidth;
    const y1 = a.y + nodeHeight / 2;
    const x2 = b.x;
    const y2 = b.y + nodeHeight / 2;
    const bend = Math.max(30, (x2 - x1) / 2);
    svg.append(
      s('path', {
        d: `M${x1},${y1} C${x1 + bend},${y1} ${x2 - bend},${y2} ${x2},${y2}`,
        fill: 'none',
        stroke: '#9ca3af',
        'stroke-width': 1.5,
        class: 'lineage-edge',
        'data-from': edge.from,
        'data-to': edge.to,
      }),
    );
  }
  for (const node of graph.nodes) {
    const p = position.get(node.id)!;
    const color = kindColors[node.kind];
    const group = s('g', {
      class: `lineage-node lineage-${node.kind}`,
      'data-id': node.id,
      'data-kind': node.kind,
    });
    group.append(
      s('title', {}, `${node.kind}: ${node.id}${node.state ? ` (${node.state})` : ''}`),
      s('rect', {
        x: p.x,
        y: p.y,
        width: nodeWidth,
        height: nodeHeight,
        rx: node.kind === 'job' ? 14 : 3,
        fill: '#ffffff',
        stroke: (node.state && stateColors[node.state]) ?? color,
        'stroke-width': 2,
      }),
      s('rect', { x: p.x, y: p.y, width: 6, height: nodeHeight, fill: color }),
      s('text', { x: p.x + 14, y: p.y + 22, 'font-size': 12, fill: '#111827' }, label(node.name)),
    );
    svg.append(group);
  }
  // Legend under the graph.
  let x = margin;
  for (const kind of ['source', 'topic', 'job', 'table'] as const) {
    svg.append(
      s('rect', { x, y: height - 16, width: 10, height: 10, fill: kindColors[kind] }),
      s('text', { x: x + 14, y: height - 7, 'font-size': 11, fill: '#4b5563' }, kind),
    );
    x += 70;
  }
  return svg;
}

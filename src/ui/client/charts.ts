/**
 * SVG charts: bar, line and sparkline. Each returns a fresh <svg> sized by its viewBox, so it scales
 * with its container (laptop or phone) while text keeps its proportions. Colours are presentation
 * attributes (not inline styles), which the page's Content-Security-Policy allows.
 */
import type { ValueFormat } from '../page-types.js';
import { s } from './dom.js';
import { formatTime, formatValue } from './format.js';

export interface ChartPoint {
  x: string | number;
  y: number;
}

export interface ChartOptions {
  width?: number;
  height?: number;
  format?: ValueFormat;
  /** Accessible title. */
  label?: string;
  color?: string;
}

const accent = '#2563eb';
const grid = '#e5e7eb';
const ink = '#4b5563';

function niceMax(value: number): number {
  // Small counts: four whole-number ticks (0, 1, 2, 3, 4 rather than 0, 0.25 … shown rounded).
  if (value < 10) return 4 * Math.max(1, Math.ceil(value / 4));
  const magnitude = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * magnitude >= value) return step * magnitude;
  return 10 * magnitude;
}

function xLabel(x: string | number): string {
  if (typeof x === 'number') return x > 1e11 ? formatTime(x) : String(x);
  if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/.test(x)) return formatTime(x);
  return x.length > 12 ? `${x.slice(0, 11)}…` : x;
}

function frame(
  kind: string,
  points: ChartPoint[],
  options: ChartOptions,
  width: number,
  height: number,
): SVGSVGElement {
  const svg = s('svg', {
    viewBox: `0 0 ${width} ${height}`,
    class: `chart chart-${kind}`,
    role: 'img',
    'aria-label': options.label ?? kind,
    'data-points': points.length,
  });
  if (options.label) svg.append(s('title', {}, options.label));
  return svg;
}

function emptyNote(svg: SVGSVGElement, width: number, height: number): SVGSVGElement {
  svg.append(
    s(
      'text',
      { x: width / 2, y: height / 2, 'text-anchor': 'middle', fill: ink, 'font-size': 13 },
      'no data yet',
    ),
  );
  return svg;
}

function axes(
  svg: SVGSVGElement,
  maxY: number,
  left: number,
  top: number,
  plotWidth: number,
  plotHeight: number,
  format: ValueFormat | undefined,
): void {
  for (let i = 0; i <= 4; i += 1) {
    const y = top + plotHeight - (plotHeight * i) / 4;
    svg.append(s('line', { x1: left, x2: left + plotWidth, y1: y, y2: y, stroke: grid, 'stroke-width': 1 }));
    svg.append(
      s(
        'text',
        { x: left - 6, y: y + 4, 'text-anchor': 'end', fill: ink, 'font-size': 11 },
        formatValue((maxY * i) / 4, format),
      ),
    );
  }
}

/** The shared frame of the axis charts: SVG, plot area (left axis labels, x labels below) and y scale. */
function plotFrame(kind: string, points: ChartPoint[], options: ChartOptions, rightPad: number) {
  const width = options.width ?? 600;
  const height = options.height ?? 220;
  const svg = frame(kind, points, options, width, height);
  const left = 56;
  const top = 10;
  const plotWidth = width - left - rightPad;
  const plotHeight = height - top - 34;
  const maxY = niceMax(Math.max(...points.map((p) => p.y)));
  if (points.length > 0) axes(svg, maxY, left, top, plotWidth, plotHeight, options.format);
  return { svg, width, height, left, top, plotWidth, plotHeight, maxY };
}

export function barChart(points: ChartPoint[], options: ChartOptions = {}): SVGSVGElement {
  const { svg, width, height, left, top, plotWidth, plotHeight, maxY } = plotFrame(
    'bar',
    points,
    options,
    10,
  );
  if (points.length === 0) return emptyNote(svg, width, height);
  const slot = plotWidth / points.length;
  const barWidth = Math.max(2, slot * 0.7);
  const labelEvery = Math.ceil(points.length / 8);
  points.forEach((point, i) => {
    const barHeight = (Math.max(0, point.y) / maxY) * plotHeight;
    const x = left + i * slot + (slot - barWidth) / 2;
    const rect = s('rect', {
      x,
      y: top + plotHeight - barHeight,
      width: barWidth,
      height: barHeight,
      rx: 2,
      fill: options.color ?? accent,
      class: 'bar',
    });
    rect.append(s('title', {}, `${xLabel(point.x)}: ${formatValue(point.y, options.format)}`));
    svg.append(rect);
    if (i % labelEvery === 0) {
      svg.append(
        s(
          'text',
          { x: x + barWidth / 2, y: height - 14, 'text-anchor': 'middle', fill: ink, 'font-size': 11 },
          xLabel(point.x),
        ),
      );
    }
  });
  return svg;
}

export function lineChart(points: ChartPoint[], options: ChartOptions = {}): SVGSVGElement {
  const { svg, width, height, left, top, plotWidth, plotHeight, maxY } = plotFrame(
    'line',
    points,
    options,
    14,
  );
  if (points.length === 0) return emptyNote(svg, width, height);
  const step = points.length > 1 ? plotWidth / (points.length - 1) : 0;
  const coordinates = points.map(
    (p, i) => [left + i * step, top + plotHeight - (Math.max(0, p.y) / maxY) * plotHeight] as const,
  );
  const line = coordinates
    .map(([x, y], i) => `${i === 0 ? 'M' : 'L'}${x.toFixed(1)},${y.toFixed(1)}`)
    .join(' ');
  const area = `${line} L${coordinates.at(-1)![0].toFixed(1)},${top + plotHeight} L${left},${top + plotHeight} Z`;
  svg.append(s('path', { d: area, fill: options.color ?? accent, 'fill-opacity': 0.12, stroke: 'none' }));
  svg.append(
    s('path', { d: line, fill: 'none', stroke: options.color ?? accent, 'stroke-width': 2, class: 'line' }),
  );
  const last = coordinates.at(-1)!;
  svg.append(s('circle', { cx: last[0], cy: last[1], r: 3.5, fill: options.color ?? accent }));
  const labelEvery = Math.ceil(points.length / 6);
  points.forEach((point, i) => {
    const last = i === points.length - 1;
    if ((i % labelEvery === 0 && points.length - 1 - i >= labelEvery / 2) || last) {
      svg.append(
        s(
          'text',
          {
            x: left + i * step,
            y: height - 14,
            'text-anchor': last && i > 0 ? 'end' : 'middle',
            fill: ink,
            'font-size': 11,
          },
          xLabel(point.x),
        ),
      );
    }
  });
  return svg;
}

export function sparkline(values: number[], options: ChartOptions = {}): SVGSVGElement {
  const width = options.width ?? 120;
  const height = options.height ?? 32;
  const points = values.map((y, i) => ({ x: i, y }));
  const svg = frame('sparkline', points, options, width, height);
  if (values.length < 2) return svg;
  const max = Math.max(...values);
  const min = Math.min(...values);
  const span = max - min || 1;
  const step = width / (values.length - 1);
  const d = values
    .map(
      (v, i) =>
        `${i === 0 ? 'M' : 'L'}${(i * step).toFixed(1)},${(height - 2 - ((v - min) / span) * (height - 4)).toFixed(1)}`,
    )
    .join(' ');
  svg.append(
    s('path', { d, fill: 'none', stroke: options.color ?? accent, 'stroke-width': 1.5, class: 'line' }),
  );
  return svg;
}

/** Picks the chart function for a page's chart kind. */
export function drawChart(
  kind: 'bar' | 'line' | 'sparkline',
  points: ChartPoint[],
  options: ChartOptions,
): SVGSVGElement {
  if (kind === 'bar') return barChart(points, options);
  if (kind === 'sparkline')
    return sparkline(
      points.map((p) => p.y),
      options,
    );
  return lineChart(points, options);
}

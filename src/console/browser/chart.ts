import { svg } from './dom.js';
import type { RunSummary } from './types.js';

const SERIES = [
  { field: 'enqueued', label: 'enqueued' },
  { field: 'deferred', label: 'deferred' },
  { field: 'failed', label: 'failed' },
  { field: 'forgotten', label: 'forgotten' },
] as const;

const WIDTH = 960;
const HEIGHT = 220;
/** Room for this many runs at least, so that a first run is a bar, not the whole chart. */
const MIN_SLOTS = 20;
const PAD = { top: 12, right: 56, bottom: 28, left: 56 };

/**
 * The last runs, oldest on the left: a stacked bar per run (enqueued, deferred, failed,
 * forgotten, on the left axis) and their durations as a line (right axis). Plain SVG: colours come
 * from the stylesheet's classes, so the page needs no inline style.
 */
export function runsChart(runs: readonly RunSummary[]): SVGElement {
  const chart = svg('svg', { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: 'img', 'aria-label': 'users per run and run durations', class: 'chart' });
  const ordered = [...runs].reverse();
  if (ordered.length === 0) {
    chart.append(svg('text', { x: WIDTH / 2, y: HEIGHT / 2, 'text-anchor': 'middle', class: 'axis' }, 'no runs yet'));
    return chart;
  }
  const plotWidth = WIDTH - PAD.left - PAD.right;
  const plotHeight = HEIGHT - PAD.top - PAD.bottom;
  const totals = ordered.map((run) => SERIES.reduce((sum, { field }) => sum + run[field], 0));
  const maxUsers = Math.max(1, ...totals);
  const maxSeconds = Math.max(1, ...ordered.map((run) => run.durationMs / 1000));
  const slot = plotWidth / Math.max(MIN_SLOTS, ordered.length);
  const barWidth = Math.max(2, slot * 0.6);
  const y = (users: number): number => PAD.top + plotHeight - (users / maxUsers) * plotHeight;
  const ySeconds = (seconds: number): number => PAD.top + plotHeight - (seconds / maxSeconds) * plotHeight;

  chart.append(
    svg('line', { x1: PAD.left, x2: WIDTH - PAD.right, y1: PAD.top + plotHeight, y2: PAD.top + plotHeight, class: 'axis-line' }),
    svg('text', { x: PAD.left - 6, y: PAD.top + 8, 'text-anchor': 'end', class: 'axis' }, maxUsers.toLocaleString('en-US')),
    svg('text', { x: PAD.left - 6, y: PAD.top + plotHeight, 'text-anchor': 'end', class: 'axis' }, '0'),
    svg('text', { x: WIDTH - PAD.right + 6, y: PAD.top + 8, class: 'axis' }, formatSeconds(maxSeconds)),
    svg('text', { x: WIDTH - PAD.right + 6, y: PAD.top + plotHeight, class: 'axis' }, '0 s'),
  );
  ordered.forEach((run, index) => {
    const x = PAD.left + index * slot + (slot - barWidth) / 2;
    let stacked = 0;
    const bar = svg('g', { class: `run status-${run.status.replace(/[^a-z-]/g, '')}`, 'data-run-id': run.runId });
    for (const { field, label } of SERIES) {
      const users = run[field];
      if (users === 0) continue;
      bar.append(svg('rect', { x, y: y(stacked + users), width: barWidth, height: Math.max(1, y(stacked) - y(stacked + users)), class: `series-${label}` }));
      stacked += users;
    }
    const tip = `${run.startedAt} · ${run.strategy} · ${run.status} · enqueued ${run.enqueued}, deferred ${run.deferred}, failed ${run.failed}, forgotten ${run.forgotten} · ${formatSeconds(run.durationMs / 1000)}`;
    bar.append(svg('rect', { x: PAD.left + index * slot, y: PAD.top, width: slot, height: plotHeight, class: 'hit' }, svg('title', {}, tip)));
    chart.append(bar);
  });
  const points = ordered.map((run, index) => [PAD.left + index * slot + slot / 2, ySeconds(run.durationMs / 1000)] as const);
  chart.append(svg('polyline', { points: points.map(([x, yAt]) => `${x},${yAt}`).join(' '), class: 'duration' }));
  for (const [x, yAt] of points) chart.append(svg('circle', { cx: x, cy: yAt, r: 3, class: 'duration-key' }));
  chart.append(legend());
  return chart;
}

function legend(): SVGElement {
  const group = svg('g', { class: 'legend' });
  const items = [...SERIES.map(({ label }) => ({ label, className: `series-${label}` })), { label: 'duration', className: 'duration-key' }];
  items.forEach(({ label, className }, index) => {
    const x = PAD.left + index * 100;
    group.append(svg('rect', { x, y: HEIGHT - 14, width: 10, height: 10, class: className }), svg('text', { x: x + 14, y: HEIGHT - 5, class: 'axis' }, label));
  });
  return group;
}

function formatSeconds(seconds: number): string {
  return seconds < 60 ? `${seconds.toFixed(seconds < 10 ? 1 : 0)} s` : `${(seconds / 60).toFixed(1)} min`;
}

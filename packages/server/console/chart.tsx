import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';

export interface ChartSeries {
  name: string;
  values: (number | null)[];
}

const PALETTE = ['#1f6feb', '#d1242f', '#1a7f37', '#9a6700', '#8250df', '#bf3989', '#0a7ea4', '#57606a'];

/**
 * A time chart drawn by uPlot on a canvas. uPlot's own legend (a table) is off; the figure's
 * caption names the series with their colours and totals, which also serve screen readers.
 */
export function TimeChart(props: {
  title: string;
  times: number[];
  series: ChartSeries[];
  unit: string;
  /** The x range in epoch seconds (all charts of a page share it, whatever their samples). */
  range: [number, number];
}) {
  const box = useRef<HTMLDivElement>(null);
  const total = props.series.reduce((sum, s) => sum + s.values.reduce<number>((a, v) => a + (v ?? 0), 0), 0);
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const width = Math.max(280, el.clientWidth);
    const plot = new uPlot(
      {
        width,
        height: 200,
        legend: { show: false },
        cursor: { show: true },
        scales: { x: { time: true, range: (): uPlot.Range.MinMax => props.range } },
        axes: [{}, { label: props.unit, size: 50 }],
        series: [
          {},
          ...props.series.map((s, i) => ({
            label: s.name,
            stroke: PALETTE[i % PALETTE.length],
            width: 2,
            points: { show: props.times.length < 40 },
          })),
        ],
      },
      [props.times, ...props.series.map((s) => s.values)] as uPlot.AlignedData,
      el,
    );
    const resize = new ResizeObserver(() => plot.setSize({ width: Math.max(280, el.clientWidth), height: 200 }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      plot.destroy();
    };
  }, [props.times, props.series, props.unit, props.range[0], props.range[1]]);
  return (
    <figure class="chart" data-total={total} data-series={props.series.length}>
      <div ref={box} class="plot" role="img" aria-label={`${props.title}: ${total} in the range`} />
      <figcaption>
        <strong>{props.title}</strong>
        {props.series.length === 0 ? (
          <span class="muted"> — nothing in this range</span>
        ) : (
          <ul class="legend">
            {props.series.map((s, i) => (
              <li key={s.name}>
                <span class={`swatch c${i % PALETTE.length}`} aria-hidden="true" />
                {s.name} <span class="muted">({s.values.reduce<number>((a, v) => a + (v ?? 0), 0)})</span>
              </li>
            ))}
          </ul>
        )}
      </figcaption>
    </figure>
  );
}

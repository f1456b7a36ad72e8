import { useEffect, useState } from 'preact/hooks';
import { api } from '../api.ts';
import { type ChartSeries, TimeChart } from '../chart.tsx';
import { ErrorText, Page, useLoad, Grid } from '../ui.tsx';

interface Series {
  name: string;
  counts: number[];
}
interface Stats {
  step: string;
  buckets: string[];
  tokens_issued: Series[];
  failed_authentications: Series[];
  denied_decisions: Series[];
  denied_by_action: Series[];
  feed: { time: string; streams: number; lag: number }[];
  truncated: boolean;
}

const RANGES = {
  '15m': { ms: 15 * 60_000, step: '10s', label: 'last 15 minutes' },
  '1h': { ms: 3600_000, step: '1m', label: 'last hour' },
  '24h': { ms: 86_400_000, step: '10m', label: 'last 24 hours' },
} as const;
type Range = keyof typeof RANGES;

const STEP_SECONDS = { '10s': 10, '1m': 60, '10m': 600 } as const;

const toSeries = (list: Series[]): ChartSeries[] => list.map((s) => ({ name: s.name, values: s.counts }));

/** Charts over time from GET /admin/stats, refreshed every 10 seconds. */
export function Dashboard() {
  const [range_, setRange] = useState<Range>('15m');
  const { data, error, reload } = useLoad(() => {
    const r = RANGES[range_];
    const to = new Date();
    const from = new Date(to.getTime() - r.ms);
    return api<Stats>('GET', `/admin/stats?from=${from.toISOString()}&to=${to.toISOString()}&step=${r.step}`);
  }, [range_]);
  useEffect(() => {
    const t = setInterval(reload, 10_000);
    return () => clearInterval(t);
  }, [reload]);
  const times = data?.buckets.map((b) => Date.parse(b) / 1000) ?? [];
  const range: [number, number] = [times[0] ?? 0, (times.at(-1) ?? 0) + STEP_SECONDS[RANGES[range_].step]];
  const feedTimes = data?.feed.map((s) => Date.parse(s.time) / 1000) ?? [];
  return (
    <Page
      title="Dashboard"
      actions={
        <label>
          Range{' '}
          <select value={range_} onChange={(e) => setRange((e.target as HTMLSelectElement).value as Range)}>
            {Object.entries(RANGES).map(([k, r]) => (
              <option key={k} value={k}>
                {r.label}
              </option>
            ))}
          </select>
        </label>
      }
    >
      <ErrorText error={error} />
      {data && (
        <div class="charts">
          <TimeChart
            range={range}
            title="Tokens issued, by service"
            unit="tokens"
            times={times}
            series={toSeries(data.tokens_issued)}
          />
          <TimeChart
            range={range}
            title="Failed authentications"
            unit="failures"
            times={times}
            series={toSeries(data.failed_authentications)}
          />
          <TimeChart
            range={range}
            title="Denied decisions, by service and action"
            unit="denials"
            times={times}
            series={toSeries(data.denied_by_action)}
          />
          <TimeChart
            range={range}
            title="Feed subscribers and lag (this replica)"
            unit="count"
            times={feedTimes}
            series={
              data.feed.length === 0
                ? []
                : [
                    { name: 'open streams', values: data.feed.map((s) => s.streams) },
                    { name: 'lag (entries)', values: data.feed.map((s) => s.lag) },
                  ]
            }
          />
        </div>
      )}
      {data && data.denied_by_action.length > 0 && (
        <Grid
          caption={<>Denied decisions by service and action ({RANGES[range_].label})</>}
          columns={['Service', 'Action', 'Denials']}
        >
          {data.denied_by_action.map((s) => {
            const [service, ...action] = s.name.split(' ');
            return (
              <tr key={s.name}>
                <td>{service}</td>
                <td>
                  <code>{action.join(' ')}</code>
                </td>
                <td>{s.counts.reduce((a, b) => a + b, 0)}</td>
              </tr>
            );
          })}
        </Grid>
      )}
    </Page>
  );
}

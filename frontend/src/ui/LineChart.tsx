/** A small line chart of the last values, scaled to max (at least the
 * largest value); each value is one point, oldest left. */
export function LineChart({
  label,
  values,
  max,
  format,
  capacity = 60,
}: {
  label: string;
  values: number[];
  max: number;
  format: (v: number) => string;
  capacity?: number;
}) {
  const W = 300;
  const H = 80;
  const top = Math.max(max, ...values, 1e-9);
  const step = W / Math.max(1, capacity - 1);
  const start = capacity - values.length;
  const pts = values.map((v, i) => `${((start + i) * step).toFixed(1)},${(H - (v / top) * (H - 2) - 1).toFixed(1)}`);
  const current = values.length ? format(values[values.length - 1]) : "—";
  return (
    <figure className="chart">
      <figcaption>
        <span>{label}</span>
        <span className="chart-value" data-testid={`chart-${label.toLowerCase()}`}>
          {current}
        </span>
      </figcaption>
      <svg viewBox={`0 0 ${W} ${H}`} preserveAspectRatio="none" role="img" aria-label={`${label}: ${current}`}>
        <line x1="0" y1={H / 2} x2={W} y2={H / 2} className="chart-grid" />
        <line x1="0" y1={H - 0.5} x2={W} y2={H - 0.5} className="chart-grid" />
        {pts.length > 1 && (
          <>
            <polygon className="chart-area" points={`${pts[0].split(",")[0]},${H} ${pts.join(" ")} ${pts[pts.length - 1].split(",")[0]},${H}`} />
            <polyline className="chart-line" points={pts.join(" ")} vectorEffect="non-scaling-stroke" />
          </>
        )}
      </svg>
      <div className="chart-scale muted">
        <span>max {format(top)}</span>
      </div>
    </figure>
  );
}

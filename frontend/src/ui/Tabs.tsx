import { useRef } from "react";

/** An ARIA tab list; arrows move between tabs. Panels are the caller's. */
export function Tabs<T extends string>({
  tabs,
  value,
  onChange,
  label,
  idPrefix,
  badges,
}: {
  tabs: readonly T[];
  value: T;
  onChange: (t: T) => void;
  label: string;
  idPrefix: string;
  badges?: Partial<Record<T, number>>;
}) {
  const ref = useRef<HTMLDivElement>(null);
  function onKeyDown(e: React.KeyboardEvent) {
    const i = tabs.indexOf(value);
    let j = -1;
    if (e.key === "ArrowRight") j = (i + 1) % tabs.length;
    if (e.key === "ArrowLeft") j = (i - 1 + tabs.length) % tabs.length;
    if (j >= 0) {
      e.preventDefault();
      onChange(tabs[j]);
      ref.current?.querySelectorAll<HTMLElement>('[role="tab"]')[j]?.focus();
    }
  }
  return (
    <div className="tabs" role="tablist" aria-label={label} ref={ref} onKeyDown={onKeyDown}>
      {tabs.map((t) => (
        <button
          key={t}
          role="tab"
          id={`${idPrefix}-tab-${slug(t)}`}
          aria-controls={`${idPrefix}-panel-${slug(t)}`}
          aria-selected={t === value}
          tabIndex={t === value ? 0 : -1}
          className={t === value ? "tab active" : "tab"}
          onClick={() => onChange(t)}
        >
          {t}
          {badges?.[t] ? <span className="badge" aria-hidden="true">{badges[t]}</span> : null}
        </button>
      ))}
    </div>
  );
}

export function slug(s: string): string {
  return s.toLowerCase().replace(/[^a-z0-9]+/g, "-");
}

export function TabPanel({
  idPrefix,
  tab,
  active,
  children,
}: {
  idPrefix: string;
  tab: string;
  active: boolean;
  children: React.ReactNode;
}) {
  return (
    <div
      role="tabpanel"
      id={`${idPrefix}-panel-${slug(tab)}`}
      aria-labelledby={`${idPrefix}-tab-${slug(tab)}`}
      hidden={!active}
      className="tabpanel"
    >
      {children}
    </div>
  );
}

import type { ReactNode } from "react";

const TOKEN = /("(?:\\.|[^"\\\n])*"?)(\s*:)?|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)|\b(true|false|null)\b|([{}[\],])/g;

/** JSON text as spans coloured by token (keys, strings, numbers, literals,
 * punctuation); the text itself is unchanged, so it lines up with an editor
 * showing the same text. */
export function highlightJSON(text: string): ReactNode[] {
  const out: ReactNode[] = [];
  let last = 0;
  let k = 0;
  for (const m of text.matchAll(TOKEN)) {
    const i = m.index ?? 0;
    if (i > last) out.push(text.slice(last, i));
    if (m[1] !== undefined) {
      out.push(
        <span key={k++} className={m[2] !== undefined ? "tok-key" : "tok-str"}>
          {m[1]}
        </span>,
      );
      if (m[2] !== undefined) out.push(m[2]);
    } else if (m[3] !== undefined) {
      out.push(
        <span key={k++} className="tok-num">
          {m[3]}
        </span>,
      );
    } else if (m[4] !== undefined) {
      out.push(
        <span key={k++} className="tok-lit">
          {m[4]}
        </span>,
      );
    } else {
      out.push(
        <span key={k++} className="tok-punct">
          {m[5]}
        </span>,
      );
    }
    last = i + m[0].length;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}

/** The 1-based line of a JSON.parse error, from the position or line in its
 * message (engines word it differently); 0 when it says neither. */
export function jsonErrorLine(text: string, e: unknown): number {
  const msg = e instanceof Error ? e.message : String(e);
  const line = /line (\d+)/.exec(msg);
  if (line) return Number(line[1]);
  const pos = /position (\d+)/.exec(msg);
  if (pos) return text.slice(0, Number(pos[1])).split("\n").length;
  if (/end of (JSON )?(data|input)/i.test(msg)) return text.split("\n").length;
  return 0;
}

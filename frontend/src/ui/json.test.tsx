import { describe, expect, it } from "vitest";
import { render } from "@testing-library/react";
import { highlightJSON, jsonErrorLine, jsonErrorOffset } from "./json";

function lineOf(text: string): number {
  try {
    JSON.parse(text);
  } catch (e) {
    return jsonErrorLine(text, e);
  }
  return -1;
}

describe("jsonErrorLine", () => {
  it("finds the line of a parse error", () => {
    expect(lineOf('{\n  "a": 1,\n  "b": x\n}')).toBe(3);
    expect(lineOf('{\n  "a": 1\n')).toBe(3);
    expect(jsonErrorLine("x", new Error("Unexpected token at line 7 column 2"))).toBe(7);
    expect(lineOf('{\n  "a": 1,\n}')).toBe(3);
    expect(lineOf('{\n  "a": [1, 2\n  "b": 2\n}')).toBe(3);
    expect(lineOf('{\n  "a": "unterminated\n}')).toBe(2);
    expect(jsonErrorLine('{"a": 1}', new Error("something else"))).toBe(0);
  });

  it("the scan agrees with JSON.parse", () => {
    for (const ok of ['{"a":[1,-2.5e3,true,false,null,"x\\u00e9\\n"],"b":{}}', "[]", " 3 ", '"s"']) {
      expect(JSON.parse(ok)).toBeDefined();
      expect(jsonErrorOffset(ok)).toBe(-1);
    }
    for (const bad of ["{", '{"a" 1}', "[1,]", "01", '{"a":1} x', "tru", '"\\q"']) {
      expect(() => JSON.parse(bad)).toThrow();
      expect(jsonErrorOffset(bad)).toBeGreaterThanOrEqual(0);
    }
  });
});

describe("highlightJSON", () => {
  it("keeps the text and tags each token", () => {
    const text = '{"k": "v", "n": -1.5e3, "t": true, "z": null}';
    const { container } = render(<pre>{highlightJSON(text)}</pre>);
    expect(container.textContent).toBe(text);
    expect([...container.querySelectorAll(".tok-key")].map((e) => e.textContent)).toEqual(['"k"', '"n"', '"t"', '"z"']);
    expect(container.querySelector(".tok-str")).toHaveTextContent('"v"');
    expect(container.querySelector(".tok-num")).toHaveTextContent("-1.5e3");
    expect([...container.querySelectorAll(".tok-lit")].map((e) => e.textContent)).toEqual(["true", "null"]);
  });
});

import { describe, expect, it } from "vitest";
import { ago, containerName, errorText, humanBytes, shortId } from "./format";

describe("humanBytes", () => {
  it("uses binary units with sensible precision", () => {
    expect(humanBytes(0)).toBe("0 B");
    expect(humanBytes(1023)).toBe("1023 B");
    expect(humanBytes(1536)).toBe("1.50 KiB");
    expect(humanBytes(10 * 1024 * 1024 + 512 * 1024)).toBe("10.5 MiB");
    expect(humanBytes(200 * 1024 ** 3)).toBe("200 GiB");
  });
  it("says — for what is not a size", () => {
    expect(humanBytes(-1)).toBe("—");
    expect(humanBytes(undefined)).toBe("—");
    expect(humanBytes(null)).toBe("—");
    expect(humanBytes(NaN)).toBe("—");
  });
});

describe("shortId", () => {
  it("drops the algorithm and keeps 12 characters", () => {
    expect(shortId("sha256:0123456789abcdef0123")).toBe("0123456789ab");
    expect(shortId("fedcba9876543210")).toBe("fedcba987654");
  });
});

describe("ago", () => {
  const now = Date.UTC(2024, 0, 10, 12, 0, 0);
  it("counts seconds, minutes, days", () => {
    expect(ago(now / 1000 - 5, now)).toBe("5 seconds ago");
    expect(ago(now / 1000 - 60, now)).toBe("1 minute ago");
    expect(ago(now / 1000 - 3 * 86400, now)).toBe("3 days ago");
    expect(ago(now / 1000 - 400 * 86400, now)).toBe("1 year ago");
  });
  it("never goes negative for a clock ahead", () => {
    expect(ago(now / 1000 + 100, now)).toBe("0 seconds ago");
  });
});

describe("errorText and containerName", () => {
  it("reads errors, strings and objects", () => {
    expect(errorText(new Error("boom"))).toBe("boom");
    expect(errorText("plain")).toBe("plain");
    expect(errorText({ a: 1 })).toBe('{"a":1}');
  });
  it("drops the leading slash, or shows the short id", () => {
    expect(containerName(["/web"], "abc")).toBe("web");
    expect(containerName([], "0123456789abcdef")).toBe("0123456789ab");
  });
});

import { describe, expect, it } from "vitest";
import { exec } from "./api";
import { installFakeBackend } from "./test/fakeBackend";

describe("exec input", () => {
  it("sends keystrokes one call at a time, in the order typed", async () => {
    const fake = installFakeBackend();
    // Each call answers only when the test says so, as a busy backend does.
    const calls: { d: string; done: () => void }[] = [];
    let inFlight = 0;
    let most = 0;
    fake.app.ExecInput.mockImplementation(
      (_id: string, d: string) =>
        new Promise<void>((resolve) => {
          inFlight++;
          most = Math.max(most, inFlight);
          calls.push({
            d,
            done: () => {
              inFlight--;
              resolve();
            },
          });
        }),
    );
    const s = await exec("c1", ["/bin/sh"], 80, 24, () => {}, () => {});
    const sent = ["e", "c", "h", "o"].map((k) => s.input(k));
    await Promise.resolve();
    expect(calls.map((c) => c.d)).toEqual(["e"]);
    calls[0].done();
    await new Promise((r) => setTimeout(r, 0));
    expect(calls.map((c) => c.d)).toEqual(["e", "cho"]);
    calls[1].done();
    await Promise.all(sent);
    expect(most).toBe(1);
    s.input("\n");
    await new Promise((r) => setTimeout(r, 0));
    expect(calls.map((c) => c.d).join("")).toBe("echo\n");
  });
});

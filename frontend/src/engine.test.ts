import { describe, expect, it } from "vitest";
import {
  cpuPercent,
  createBody,
  healthOf,
  imageRef,
  LogSplitter,
  memUsage,
  parseBinds,
  parseEnv,
  parseImageRef,
  parsePorts,
  publishedPorts,
  splitList,
  splitTimestamp,
  stripAnsi,
} from "./engine";

describe("ports", () => {
  it("lists each published port once, sorted", () => {
    expect(
      publishedPorts([
        { IP: "0.0.0.0", PrivatePort: 80, PublicPort: 8080, Type: "tcp" },
        { IP: "::", PrivatePort: 80, PublicPort: 8080, Type: "tcp" },
        { PrivatePort: 443, Type: "tcp" },
        { IP: "0.0.0.0", PrivatePort: 53, PublicPort: 5353, Type: "udp" },
      ]),
    ).toEqual([
      { host: 5353, container: 53, type: "udp" },
      { host: 8080, container: 80, type: "tcp" },
    ]);
    expect(publishedPorts(null)).toEqual([]);
  });

  it("reads port specs into the create body's shapes", () => {
    expect(parsePorts("8080:80, 127.0.0.1:5353:53/udp\n9000")).toEqual({
      exposed: { "80/tcp": {}, "53/udp": {}, "9000/tcp": {} },
      bindings: {
        "80/tcp": [{ HostIp: "", HostPort: "8080" }],
        "53/udp": [{ HostIp: "127.0.0.1", HostPort: "5353" }],
        "9000/tcp": [{ HostIp: "", HostPort: "" }],
      },
    });
  });

  it("refuses what is not a port", () => {
    expect(() => parsePorts("80:http")).toThrow(/http is not a port/);
    expect(() => parsePorts("99999:80")).toThrow(/99999/);
    expect(() => parsePorts("80/icmp")).toThrow(/protocol/);
  });
});

describe("run form", () => {
  it("builds the create body", () => {
    expect(
      createBody({ image: "nginx:1.27", name: "web", ports: "8080:80", volumes: "/srv/www:/usr/share/nginx/html:ro", env: "A=1\n\nB=two words" }),
    ).toEqual({
      Image: "nginx:1.27",
      Env: ["A=1", "B=two words"],
      ExposedPorts: { "80/tcp": {} },
      HostConfig: { PortBindings: { "80/tcp": [{ HostIp: "", HostPort: "8080" }] }, Binds: ["/srv/www:/usr/share/nginx/html:ro"] },
    });
    expect(createBody({ image: "alpine", name: "", ports: "", volumes: "", env: "" })).toEqual({ Image: "alpine", HostConfig: {} });
  });

  it("refuses volumes without a container path and env lines without a name", () => {
    expect(() => parseBinds("/just/one")).toThrow(/SOURCE/);
    expect(() => parseBinds("/a:relative")).toThrow(/not absolute/);
    expect(parseBinds("C:\\data:/data")).toEqual(["C:\\data:/data"]);
    expect(() => parseEnv("=x")).toThrow(/KEY=VALUE/);
    expect(() => parseEnv("NOVALUE")).toThrow(/KEY=VALUE/);
  });

  it("splits lists on commas and lines", () => {
    expect(splitList(" a, b\n\nc ,")).toEqual(["a", "b", "c"]);
  });
});

describe("image references", () => {
  it("splits name and tag as the docker CLI does", () => {
    expect(parseImageRef("alpine")).toEqual({ fromImage: "alpine", tag: "latest" });
    expect(parseImageRef("nginx:1.27")).toEqual({ fromImage: "nginx", tag: "1.27" });
    expect(parseImageRef("reg.local:5000/team/app")).toEqual({ fromImage: "reg.local:5000/team/app", tag: "latest" });
    expect(parseImageRef("reg.local:5000/team/app:v2")).toEqual({ fromImage: "reg.local:5000/team/app", tag: "v2" });
    expect(parseImageRef("alpine@sha256:abc")).toEqual({ fromImage: "alpine", tag: "sha256:abc" });
  });
  it("names an image by its first tag, else its id", () => {
    expect(imageRef({ Id: "sha256:1", RepoTags: ["a:1", "b:2"], Created: 0, Size: 0 })).toBe("a:1");
    expect(imageRef({ Id: "sha256:1", RepoTags: ["<none>:<none>"], Created: 0, Size: 0 })).toBe("sha256:1");
    expect(imageRef({ Id: "sha256:2", RepoTags: null, Created: 0, Size: 0 })).toBe("sha256:2");
  });
});

describe("stats", () => {
  it("computes CPU % as docker stats does", () => {
    const s = {
      cpu_stats: { cpu_usage: { total_usage: 3_000_000 }, system_cpu_usage: 110_000_000, online_cpus: 4 },
      precpu_stats: { cpu_usage: { total_usage: 1_000_000 }, system_cpu_usage: 100_000_000 },
    };
    // 2e6 of 1e7 system ticks, times 4 CPUs.
    expect(cpuPercent(s)).toBeCloseTo(80);
    expect(cpuPercent({ cpu_stats: s.cpu_stats, precpu_stats: {} })).toBeUndefined();
  });
  it("counts memory without the inactive page cache", () => {
    expect(memUsage({ memory_stats: { usage: 1000, limit: 4000, stats: { inactive_file: 300 } } })).toEqual({ used: 700, limit: 4000 });
    expect(memUsage({ memory_stats: { usage: 1000, limit: 4000, stats: { total_inactive_file: 100 } } })).toEqual({ used: 900, limit: 4000 });
    expect(memUsage({})).toBeUndefined();
  });
  it("reads the health from the status", () => {
    expect(healthOf("Up 3 minutes (healthy)")).toBe("healthy");
    expect(healthOf("Up 1 second (health: starting)")).toBe("starting");
    expect(healthOf("Up 3 minutes (unhealthy)")).toBe("unhealthy");
    expect(healthOf("Up 3 minutes")).toBeUndefined();
  });
});

describe("log lines", () => {
  it("joins lines cut across chunks, per stream, and splits timestamps", () => {
    const s = new LogSplitter();
    expect(s.push("stdout", "2024-01-02T03:04:05.123456789Z hel")).toEqual([]);
    expect(s.push("stderr", "2024-01-02T03:04:06Z oops\n")).toMatchObject([{ stream: "stderr", ts: "2024-01-02T03:04:06Z", text: "oops" }]);
    const out = s.push("stdout", "lo\r\n2024-01-02T03:04:07Z \x1b[31mred\x1b[0m\n");
    expect(out).toMatchObject([
      { stream: "stdout", ts: "2024-01-02T03:04:05.123456789Z", text: "hello" },
      { stream: "stdout", text: "red" },
    ]);
    expect(s.push(undefined, "tail")).toEqual([]);
    expect(s.flush()).toMatchObject([{ text: "tail" }]);
    const seqs = [...out].map((l) => l.seq);
    expect(seqs[1]).toBeGreaterThan(seqs[0]);
  });
  it("leaves lines without a timestamp alone", () => {
    expect(splitTimestamp("plain line")).toEqual({ ts: "", text: "plain line" });
    expect(stripAnsi("\x1b[1;32mok\x1b[0m \x1b]0;title\x07done")).toBe("ok done");
  });
});

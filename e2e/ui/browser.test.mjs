// Browser tests of the desktop app: Debian's chromium, driven by
// playwright-core, opens the page the dev build serves (BERTH_UI_URL), whose
// bound methods reach the real Go backend over its websocket, against a
// running Berth VM reached by the docker CLI (DOCKER_HOST). e2e's
// TestDesktop starts all of it and runs this file.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { existsSync, readFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { chromium } from "playwright-core";

const URL = need("BERTH_UI_URL");
const IMAGE = need("BERTH_TEST_IMAGE");
const SETTINGS = need("BERTH_SETTINGS");
const AUTOSTART = need("BERTH_AUTOSTART");
const CLI = need("BERTH_CLI");
const ARTIFACTS = process.env.BERTH_UI_ARTIFACTS ?? tmpdir();
const run = promisify(execFile);

function need(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: TestDesktop in e2e/ runs these tests`);
  return v;
}

/** The docker CLI against the VM; throws with its output when it fails. */
function docker(...args) {
  return execFileSync("docker", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();
}

let browser, page, profile;

before(async () => {
  profile = mkdtempSync(join(tmpdir(), "berth-chromium-"));
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--no-first-run",
      "--disable-sync",
    ],
  });
  const ctx = await browser.newContext({ viewport: { width: 1024, height: 768 } });
  page = await ctx.newPage();
  page.on("pageerror", (e) => console.log("page error:", e.message));
  await page.goto(URL);
  await page.getByRole("navigation", { name: "Main" }).waitFor();
});

after(async () => {
  await page?.screenshot({ path: join(ARTIFACTS, "browser-last.png") }).catch(() => {});
  await browser?.close();
  rmSync(profile, { recursive: true, force: true });
  for (const n of ["ui-logs", "ui-stop"]) {
    try {
      docker("rm", "-f", n);
    } catch {
      /* not there */
    }
  }
});

async function nav(screen) {
  await page.getByRole("navigation", { name: "Main" }).getByRole("button", { name: screen, exact: true }).click();
}

/** settings.json as the app last saved it, or null before its first save. */
function savedSettings() {
  return existsSync(SETTINGS) ? readFileSync(SETTINGS, "utf8") : null;
}

function row(name) {
  return page.locator(`[data-testid="container-row"][data-name="${name}"]`);
}

async function waitFor(what, f, ms = 60_000) {
  const deadline = Date.now() + ms;
  let last;
  while (Date.now() < deadline) {
    try {
      last = await f();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${what}: not within ${ms} ms (last: ${last})`);
}

test("the engine is running", async () => {
  await waitFor("status pill says running", async () =>
    (await page.getByTestId("status-pill").getAttribute("data-state")) === "running");
});

test("the containers list shows a container started with the docker CLI", async () => {
  docker("run", "-d", "--name", "ui-stop", IMAGE, "sleep", "600");
  await nav("Containers");
  await row("ui-stop").waitFor({ timeout: 30_000 });
  assert.match(await row("ui-stop").innerText(), /running/i);
});

test("stopping it from the page stops it", async () => {
  await page.getByRole("button", { name: "Stop ui-stop", exact: true }).click();
  await waitFor("docker ps no longer lists it", () => docker("ps", "-q", "--filter", "name=^ui-stop$") === "");
  assert.equal(docker("inspect", "-f", "{{.State.Running}}", "ui-stop"), "false");
  await waitFor("the row shows it exited", async () => /exited/i.test(await row("ui-stop").innerText()));
});

test("logs stream on the container page", async () => {
  docker("run", "-d", "--name", "ui-logs", IMAGE, "sh", "-c",
    'i=0; while true; do echo "tick $i"; i=$((i+1)); sleep 0.3; done');
  await row("ui-logs").waitFor({ timeout: 30_000 });
  await row("ui-logs").getByRole("button", { name: "ui-logs", exact: true }).click();
  const logs = page.getByTestId("logs");
  await logs.waitFor();
  const ticks = async () => (await logs.innerText()).match(/tick \d+/g)?.length ?? 0;
  const first = await waitFor("a first log line", ticks);
  // New lines arrive while the page is open: the log is followed.
  await waitFor("more log lines", async () => (await ticks()) >= first + 3);
});

test("the exec terminal runs a command", async () => {
  await page.getByRole("tab", { name: "Terminal" }).click();
  const term = page.getByTestId("terminal");
  await term.waitFor();
  // xterm.js draws blanks as no-break spaces, which \s matches.
  const text = async () => (await term.innerText()).replace(/\u00a0/g, " ");
  try {
    await waitFor("a shell prompt", async () => /[#$]\s*$/m.test(await text()), 30_000);
    await term.click();
    await page.keyboard.type("echo berth-$((6*7))\n");
    await waitFor("the command's output", async () => (await text()).includes("berth-42"), 30_000);
  } catch (e) {
    await page.screenshot({ path: join(ARTIFACTS, "browser-terminal-failed.png") }).catch(() => {});
    throw new Error(`${e.message}; the terminal shows: ${JSON.stringify(await text())}`);
  }
});

test("a bad setting shows the error and changes nothing", async () => {
  await page.getByRole("tab", { name: "Logs" }).click(); // leave the terminal
  await nav("Settings");
  const before = savedSettings();
  await page.getByRole("tab", { name: "Resources" }).click();
  await page.getByLabel("CPUs", { exact: true }).fill("999");
  await page.getByRole("button", { name: "Apply & restart" }).click();
  const err = page.getByTestId("error-resources.cpus");
  await err.waitFor({ timeout: 30_000 });
  assert.match(await err.innerText(), /cpu/i);
  assert.equal(savedSettings(), before, "settings.json changed");
  await page.getByRole("button", { name: "Cancel" }).click();
  assert.notEqual(await page.getByLabel("CPUs", { exact: true }).inputValue(), "999");
});

test("a valid change applies", async () => {
  const mirror = "http://127.0.0.1:5999/";
  await page.getByRole("tab", { name: "Docker Engine" }).click();
  await page.getByLabel("Registry mirrors").fill(mirror);
  await page.getByRole("button", { name: "Apply & restart" }).click();
  await page.getByTestId("apply-result").waitFor({ timeout: 180_000 });
  await waitFor("docker info shows the mirror", () =>
    docker("info", "--format", "{{json .RegistryConfig.Mirrors}}").includes("127.0.0.1:5999"), 120_000);
  assert.match(savedSettings() ?? "", /127\.0\.0\.1:5999/);
});

test("start at login writes the login entry, and turning it off removes it", async () => {
  await page.getByRole("tab", { name: "General" }).click();
  const box = page.getByLabel("Start Berth when you log in");
  assert.equal(existsSync(AUTOSTART), false, "a login entry before the setting was on");
  await box.check();
  await page.getByRole("button", { name: "Apply & restart" }).click();
  await waitFor("the login entry", async () => existsSync(AUTOSTART), 120_000);
  const entry = readFileSync(AUTOSTART, "utf8");
  assert.match(entry, /^\[Desktop Entry\]/);
  assert.ok(entry.split("\n").includes(`Exec=${CLI} start`), `the entry does not run "${CLI} start":\n${entry}`);
  await waitFor("settings.json has it on", async () => /"startAtLogin":\s*true/.test(savedSettings() ?? ""), 60_000);
  await box.uncheck();
  await page.getByRole("button", { name: "Apply & restart" }).click();
  await waitFor("the login entry is gone", async () => !existsSync(AUTOSTART), 120_000);
});

test("every screen fits 1024x768, reads in light and dark, and answers the keyboard", async () => {
  const screens = ["Status", "Containers", "Images", "Volumes", "Settings", "Troubleshoot"];
  for (const scheme of ["light", "dark"]) {
    await page.emulateMedia({ colorScheme: scheme });
    for (const [i, name] of screens.entries()) {
      await page.keyboard.press(`Control+${i + 1}`);
      await page.getByRole("heading", { level: 1, name }).waitFor();
      await page.waitForTimeout(300);
      const r = await page.evaluate(() => {
        const rgb = (c) => (c.match(/[\d.]+/g) ?? []).map(Number);
        const lum = ([r, g, b]) => {
          const f = (v) => ((v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
          return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
        };
        const bg = (el) => {
          for (; el; el = el.parentElement) {
            const c = rgb(getComputedStyle(el).backgroundColor);
            if (c.length === 3 || (c.length === 4 && c[3] > 0)) return c.slice(0, 3);
          }
          return [255, 255, 255];
        };
        // The worst contrast of visible text on the screen.
        let worst = { ratio: 99, text: "" };
        for (const el of document.querySelectorAll("main h1, main h2, main p, main td, main th, main label, main button, nav button")) {
          const box = el.getBoundingClientRect();
          if (!box.width || !box.height || !el.textContent.trim()) continue;
          const st = getComputedStyle(el);
          if (st.visibility === "hidden" || Number(st.opacity) < 0.5) continue;
          const a = lum(rgb(st.color).slice(0, 3)), b = lum(bg(el));
          const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
          if (ratio < worst.ratio) worst = { ratio, text: el.textContent.trim().slice(0, 40) };
        }
        return { overflow: document.documentElement.scrollWidth - window.innerWidth, worst };
      });
      assert.ok(r.overflow <= 0, `${name} (${scheme}) is ${r.overflow}px wider than the 1024px window`);
      // WCAG AA for large text and controls; body text is darker still.
      assert.ok(r.worst.ratio >= 3, `${name} (${scheme}): "${r.worst.text}" has contrast ${r.worst.ratio.toFixed(2)}`);
      await page.screenshot({ path: join(ARTIFACTS, `browser-${scheme}-${name.toLowerCase()}.png`) });
    }
  }
  await page.emulateMedia({ colorScheme: "light" });
  // Tab reaches the sidebar, and Enter on a focused entry opens its screen.
  await page.keyboard.press("Control+1");
  const images = page.getByRole("navigation", { name: "Main" }).getByRole("button", { name: "Images", exact: true });
  await images.focus();
  await page.keyboard.press("Enter");
  await page.getByRole("heading", { level: 1, name: "Images" }).waitFor();
  await page.keyboard.press("Tab");
  assert.notEqual(await page.evaluate(() => document.activeElement?.tagName), "BODY", "Tab left the focus nowhere");
});

test("figure: the containers list with 200 containers", async () => {
  const names = Array.from({ length: 200 }, (_, i) => `ui-many-${i}`);
  try {
    for (let i = 0; i < names.length; i += 8) {
      await Promise.all(names.slice(i, i + 8).map((n) => run("docker", ["create", "--name", n, IMAGE, "true"])));
    }
    await nav("Containers");
    await waitFor("200 rows", async () => (await page.locator('[data-testid="container-row"]').count()) >= 200);
    const times = [];
    for (let i = 0; i < 7; i++) {
      times.push(await page.evaluate(() => window.__berthRefreshContainers()));
    }
    times.sort((a, b) => a - b);
    console.log(`figure: containers list refresh with ${names.length + 2} containers: median ${times[3].toFixed(0)} ms (each ${times.map((t) => t.toFixed(0)).join(", ")})`);
    await page.screenshot({ path: join(ARTIFACTS, "browser-200-containers.png") });
  } finally {
    for (let i = 0; i < names.length; i += 50) {
      await run("docker", ["rm", "-f", ...names.slice(i, i + 50)]).catch(() => {});
    }
  }
});

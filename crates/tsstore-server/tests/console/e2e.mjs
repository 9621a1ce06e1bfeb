// End-to-end test of the web console in real headless Chromium, driven
// by playwright-core. tests/console.rs starts the server, creates a store
// and runs this with: BASE (server URL), ADMIN (admin key), STORE and KEY
// (a store and its API key), CHROMIUM (the browser), SHOTS (where the
// screenshots go). Exits non-zero, saying why, on the first failure.
import { chromium } from "playwright-core";
import assert from "node:assert/strict";

const { BASE, ADMIN, STORE, KEY, CHROMIUM, SHOTS, WEATHER_KEY } = process.env;
const WAIT = 2000; // a record inserted through the API shows within this

async function insert(data, store = STORE, key = KEY) {
  const res = await fetch(`${BASE}/api/stores/${store}/data`, {
    method: "POST",
    headers: { "X-API-Key": key, "Content-Type": "application/json" },
    body: JSON.stringify({ data }),
  });
  assert.equal(res.status, 201, await res.text());
}

/** Signs `page` in to `store` and waits for its live feed. */
async function signIn(page, store, key) {
  await page.goto(`${BASE}/#/signin`);
  await page.fill("input[name=store]", store);
  await page.fill("input[name=key]", key);
  await page.click("button[type=submit]");
  await page.getByRole("heading", { name: store }).waitFor({ timeout: 5000 });
  await page.locator("#live", { hasText: "live" }).waitFor({ timeout: 5000 });
}

const chartPoints = (page) => page.evaluate(() => Number(document.querySelector("#chart").dataset.points || 0));

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
let failed = false;
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const dialogs = [];
  page.on("dialog", async (d) => { dialogs.push(d.message()); await d.dismiss(); });
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  const cspViolations = [];
  page.on("console", (m) => { if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text()); });

  // The page and its headers: a strict CSP, no inline script or style.
  const response = await page.goto(`${BASE}/`);
  const csp = response.headers()["content-security-policy"] || "";
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /script-src 'self'/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
  const html = await response.text();
  assert.doesNotMatch(html, /<script>|<style>|style=/, "no inline script or style in the page");

  // A wrong key says so.
  await page.fill("input[name=store]", STORE);
  await page.fill("input[name=key]", "not-the-key");
  await page.click("button[type=submit]");
  await page.getByRole("alert").filter({ hasText: "Wrong key" }).waitFor({ timeout: 5000 });

  // Sign in with the store key: the store page.
  await page.fill("input[name=key]", KEY);
  await page.click("button[type=submit]");
  await page.getByRole("heading", { name: STORE }).waitFor({ timeout: 5000 });
  await page.locator("#live", { hasText: "live" }).waitFor({ timeout: 5000 });
  // The influx connection shows how far behind it is.
  await page.locator("td", { hasText: "Influx ship" }).waitFor({ timeout: 5000 });
  await page.locator("div.muted", { hasText: /behind 120 records/ }).waitFor({ timeout: 5000 });

  // What the page costs: every byte it loaded, and its first paint.
  const cost = await page.evaluate(() => ({
    bytes: performance.getEntriesByType("resource").concat(performance.getEntriesByType("navigation"))
      .filter((e) => !e.name.includes("/api/"))
      .reduce((n, e) => n + e.encodedBodySize, 0),
    paint: (performance.getEntriesByName("first-contentful-paint")[0] || {}).startTime,
  }));
  console.log(`console cost: ${cost.bytes} bytes of assets, first contentful paint ${cost.paint?.toFixed(0)} ms`);

  // A record inserted through the API appears in the table and the chart.
  const before = await chartPoints(page);
  await insert({ temp: 21.5, room: "kitchen" });
  await page.locator("td.data", { hasText: "kitchen" }).first().waitFor({ timeout: WAIT });
  await page.waitForFunction((n) => Number(document.querySelector("#chart").dataset.points || 0) > n, before, { timeout: WAIT });
  assert.ok(await chartPoints(page) > before);

  // Hostile records are text, and run nothing.
  await insert({ note: "<img src=x onerror=alert(1)>", temp: 22 });
  await insert({ note: "</script><script>alert(1)</script>", temp: 23 });
  await page.locator("td.data", { hasText: "</script><script>alert(1)</script>" }).first().waitFor({ timeout: WAIT });
  await page.locator("td.data", { hasText: "<img src=x onerror=alert(1)>" }).first().waitFor({ timeout: WAIT });
  assert.equal(await page.locator("main img").count(), 0, "no element made from record contents");
  await insert({ temp: 24, room: "hall" });
  await page.locator("td.data", { hasText: "hall" }).first().waitFor({ timeout: WAIT });

  // The filter narrows the table.
  await page.fill("input[type=search]", "kitchen");
  await page.press("input[type=search]", "Enter");
  await page.waitForFunction(() => [...document.querySelectorAll("td.data")].every((td) => td.textContent.includes("kitchen")), null, { timeout: WAIT });
  assert.equal(await page.locator("td.data", { hasText: "hall" }).count(), 0);
  await page.fill("input[type=search]", "");
  await page.press("input[type=search]", "Enter");
  await page.locator("td.data", { hasText: "hall" }).first().waitFor({ timeout: WAIT });
  await page.locator("#live", { hasText: "live" }).waitFor({ timeout: 5000 });
  await page.screenshot({ path: `${SHOTS}/console-desktop.png` });

  // A year of hourly windows from the weather store's rollup.
  await signIn(page, "weather", WEATHER_KEY);
  await page.selectOption("select[aria-label='time span']", "31536000");
  await page.locator("#resolution", { hasText: "1h windows" }).waitFor({ timeout: 5000 });
  const hours = await chartPoints(page);
  assert.ok(hours >= 8700, `a year of hours drawn: ${hours}`);
  // The value under the pointer, in the legend.
  const over = page.locator("#chart .u-over");
  const box = await over.boundingBox();
  await page.mouse.move(box.x + box.width * 0.5, box.y + box.height * 0.5);
  const shownValue = page.locator("#chart .u-legend .u-series").nth(1).locator(".u-value");
  await page.waitForFunction(() => /\d/.test(document.querySelectorAll("#chart .u-legend .u-series .u-value")[1]?.textContent || ""), null, { timeout: WAIT });
  const value = await shownValue.textContent();
  assert.match(value, /^-?\d/, `a value under the pointer: ${value}`);
  await page.screenshot({ path: `${SHOTS}/console-rollups.png` });
  // Drag across the last percent of the year: the server answers with raw readings.
  await page.mouse.move(box.x + box.width * 0.985, box.y + box.height * 0.5);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.995, box.y + box.height * 0.5, { steps: 5 });
  await page.mouse.up();
  await page.locator("#resolution", { hasText: "raw readings" }).waitFor({ timeout: 5000 });
  await page.getByRole("button", { name: "Whole span" }).waitFor({ timeout: 5000 });
  await page.screenshot({ path: `${SHOTS}/console-zoomed.png` });
  // The last day is raw, and live readings join it.
  await page.selectOption("select[aria-label='time span']", "86400");
  await page.getByRole("button", { name: "Whole span" }).waitFor({ state: "hidden", timeout: 5000 });
  // A day of readings every 10 minutes.
  await page.waitForFunction(() => { const n = Number(document.querySelector("#chart").dataset.points || 0); return n > 100 && n < 200; }, null, { timeout: 5000 });
  await page.locator("#resolution", { hasText: "raw readings" }).waitFor({ timeout: 5000 });
  const dayBefore = await chartPoints(page);
  await insert({ temp: 30.5, humidity: 41 }, "weather", WEATHER_KEY);
  await page.waitForFunction((n) => Number(document.querySelector("#chart").dataset.points || 0) > n, dayBefore, { timeout: WAIT });

  // One record in an empty store: drawn, and counted in the panel at once.
  const made = await fetch(`${BASE}/api/stores`, {
    method: "POST", headers: { "X-Admin-Key": ADMIN, "Content-Type": "application/json" },
    body: JSON.stringify({ name: "single", num_blocks: 16 }),
  });
  assert.equal(made.status, 201);
  const singleKey = (await made.json()).api_key;
  await signIn(page, "single", singleKey);
  await insert({ temp: 19.5 }, "single", singleKey);
  await page.locator("td.data", { hasText: "19.5" }).first().waitFor({ timeout: WAIT });
  await page.waitForFunction(() => document.querySelector("#chart").dataset.points === "1", null, { timeout: WAIT });
  await page.waitForFunction(() => [...document.querySelectorAll("dl.stats dt")]
    .some((dt) => dt.textContent === "Records" && dt.nextElementSibling.textContent === "1"), null, { timeout: WAIT });
  const panel = await page.locator("dl.stats").textContent();
  assert.doesNotMatch(panel, /Reach\s*empty/, `the panel follows: ${panel}`);
  await page.screenshot({ path: `${SHOTS}/console-single.png` });

  // The stores overview lists it.
  await page.goto(`${BASE}/#/`);
  await page.getByRole("link", { name: STORE }).waitFor({ timeout: 5000 });

  // The admin creates a store and sees its key once.
  await page.goto(`${BASE}/#/signin`);
  await page.fill("input[name=store]", "");
  await page.fill("input[name=key]", ADMIN);
  await page.click("button[type=submit]");
  await page.getByRole("button", { name: "Create a store" }).click();
  await page.fill("input[name=name]", "made-in-console");
  await page.fill("input[name=num_blocks]", "64");
  // The estimate is the server's (GET /api/calc): 64 blocks of 48.
  await page.locator("#estimate", { hasText: /Holds 3.?072 readings of 60 bytes/ }).waitFor({ timeout: 5000 });
  // The retention planner: how far back each rollup would reach.
  await page.fill("input[name=rollups]", "1h::365d");
  await page.locator("#reach li", { hasText: /^1h windows: 36\d days back/ }).waitFor({ timeout: 5000 });
  await page.fill("input[name=rollups]", "");
  // Compressed: 12 of the 64 blocks stage, the other 52 hold 481 each.
  await page.selectOption("select[name=encoding]", "compressed");
  await page.locator("#estimate", { hasText: /Holds 25.?012 readings of 60 bytes/ }).waitFor({ timeout: 5000 });
  await page.click("button[type=submit]");
  const shown = await page.locator("code.apikey").textContent({ timeout: 5000 });
  assert.ok(shown && shown.length >= 20, `an API key: ${shown}`);
  const check = await fetch(`${BASE}/api/stores/made-in-console/stats`, { headers: { "X-API-Key": shown } });
  assert.equal(check.status, 200, "the key shown works");
  assert.equal((await check.json()).encoding, "compressed", "created compressed");
  await page.goto(`${BASE}/#/`);
  await page.getByRole("button", { name: "Create a store" }).click();
  await page.locator("input[name=name]").waitFor();
  assert.equal(await page.locator("code.apikey").count(), 0, "the key is shown once");
  // The key never reached the address bar.
  assert.ok(!page.url().includes(KEY) && !page.url().includes(shown));

  // A phone-sized screen.
  const phone = await browser.newPage({ viewport: { width: 390, height: 844 }, isMobile: true });
  await phone.goto(`${BASE}/`);
  await phone.fill("input[name=store]", STORE);
  await phone.fill("input[name=key]", KEY);
  await phone.click("button[type=submit]");
  await phone.locator("#live", { hasText: "live" }).waitFor({ timeout: 5000 });
  await phone.locator("td.data").first().waitFor({ timeout: WAIT });
  await phone.screenshot({ path: `${SHOTS}/console-phone.png` });

  assert.deepEqual(dialogs, [], "no dialog opened");
  assert.deepEqual(pageErrors, [], "no script error");
  assert.deepEqual(cspViolations, [], "no CSP violation");
  console.log("console e2e: ok");
} catch (err) {
  failed = true;
  console.error("console e2e failed:", err);
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);

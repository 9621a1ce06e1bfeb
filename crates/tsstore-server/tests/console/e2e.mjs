// End-to-end test of the web console in real headless Chromium, driven
// by playwright-core. tests/console.rs starts the server, creates a store
// and runs this with: BASE (server URL), ADMIN (admin key), STORE and KEY
// (a store and its API key), CHROMIUM (the browser), SHOTS (where the
// screenshots go). Exits non-zero, saying why, on the first failure.
import { chromium } from "playwright-core";
import assert from "node:assert/strict";

const { BASE, ADMIN, STORE, KEY, CHROMIUM, SHOTS } = process.env;
const WAIT = 2000; // a record inserted through the API shows within this

async function insert(data) {
  const res = await fetch(`${BASE}/api/stores/${STORE}/data`, {
    method: "POST",
    headers: { "X-API-Key": KEY, "Content-Type": "application/json" },
    body: JSON.stringify({ data }),
  });
  assert.equal(res.status, 201, await res.text());
}

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

  // A record inserted through the API appears in the table and the chart.
  const points = async () => Number(await page.locator("canvas").getAttribute("data-points") || "0");
  const before = await points();
  await insert({ temp: 21.5, room: "kitchen" });
  await page.locator("td.data", { hasText: "kitchen" }).first().waitFor({ timeout: WAIT });
  await page.waitForFunction((n) => Number(document.querySelector("canvas").dataset.points || 0) > n, before, { timeout: WAIT });
  assert.ok(await points() > before);

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

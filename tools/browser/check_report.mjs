#!/usr/bin/env node
// Opens an art HTML report in headless Chromium and checks that a reviewer's browser is happy
// with it. Used by crates/report/tests/render.rs (browser_opens_the_report_cleanly).
//
//   node tools/browser/check_report.mjs --html REPORT.html --findings N --screenshot OUT.png
//        [--selector '#findings-count'] [--chromium /usr/bin/chromium]
//
// Fails (exit 1) on: any console error or uncaught page error; any request other than the
// file:// page itself and data: URLs (the report must be self-contained and work offline); the
// text of --selector not equal to N; the first blurred image not loading, not blurred, or still
// blurred after a click. Writes a full-page screenshot (first image revealed, first lane open)
// and prints one JSON object with what it saw. Needs `npm ci` here (playwright-core, which
// drives Debian's chromium; it never downloads a browser).

import { chromium } from "playwright-core";
import { parseArgs } from "node:util";
import path from "node:path";
import { pathToFileURL } from "node:url";

const { values: opt } = parseArgs({
  options: {
    html: { type: "string" },
    findings: { type: "string" },
    screenshot: { type: "string" },
    selector: { type: "string", default: "#findings-count" },
    chromium: { type: "string", default: process.env.CHROMIUM ?? "/usr/bin/chromium" },
  },
});
if (!opt.html || opt.findings === undefined || !opt.screenshot) {
  console.error("usage: check_report.mjs --html FILE --findings N --screenshot OUT.png");
  process.exit(2);
}

const pageUrl = pathToFileURL(path.resolve(opt.html)).href;
const result = {
  ok: false,
  url: pageUrl,
  findings: null,
  expectedFindings: opt.findings,
  images: 0,
  filterBefore: null,
  filterAfter: null,
  console: [],
  requests: [],
  failures: [],
  screenshot: path.resolve(opt.screenshot),
};
const fail = (msg) => result.failures.push(msg);

let browser;
try {
  browser = await chromium.launch({
    executablePath: opt.chromium,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(20_000);

  page.on("console", (msg) => {
    result.console.push(`${msg.type()}: ${msg.text()}`);
    if (msg.type() === "error") fail(`console error: ${msg.text()}`);
  });
  page.on("pageerror", (err) => fail(`page error: ${err.message}`));
  context.on("request", (req) => {
    const url = req.url();
    const allowed = url === pageUrl || url.startsWith("data:");
    result.requests.push(url.startsWith("data:") ? url.slice(0, 40) + "..." : url);
    if (!allowed) fail(`request to ${url}`);
  });
  context.on("requestfailed", (req) => {
    if (!req.url().startsWith("data:")) fail(`request failed: ${req.url()}`);
  });

  await page.goto(pageUrl, { waitUntil: "load" });

  // The findings count shown equals the report's.
  const counter = page.locator(opt.selector).first();
  result.findings = ((await counter.textContent()) ?? "").trim();
  if (result.findings !== opt.findings) {
    fail(`${opt.selector} shows "${result.findings}", expected "${opt.findings}"`);
  }

  // Every image element got its data from the page's image map.
  const counts = await page.evaluate(() => ({
    images: document.querySelectorAll("img").length,
    withoutSrc: document.querySelectorAll("img:not([src])").length,
    external: [...document.querySelectorAll("[src],[href]")]
      .map((el) => el.getAttribute("src") ?? el.getAttribute("href"))
      .filter((v) => !v.startsWith("data:") && !v.startsWith("#")),
  }));
  result.images = counts.images;
  if (counts.withoutSrc > 0) fail(`${counts.withoutSrc} images without a source`);
  if (counts.external.length > 0) fail(`links outside the page: ${counts.external.join(", ")}`);

  // The first visible image: loads, is blurred, and a click reveals it. (Without findings,
  // every image is in a collapsed lane: open them first.)
  if ((await page.locator("button.thumb").count()) > 0) {
    if ((await page.locator("button.thumb:visible").count()) === 0) {
      await page.evaluate(() => document.querySelectorAll("details").forEach((d) => (d.open = true)));
    }
    const thumb = page.locator("button.thumb:visible").first();
    const img = thumb.locator("img");
    await img.scrollIntoViewIfNeeded();
    await page.waitForFunction(
      (el) => el.complete && el.naturalWidth > 0,
      await img.elementHandle(),
    );
    const filter = () => img.evaluate((el) => getComputedStyle(el).filter);
    result.filterBefore = await filter();
    if (!result.filterBefore.includes("blur")) fail(`first image not blurred: ${result.filterBefore}`);
    await thumb.click();
    result.filterAfter = await filter();
    if (result.filterAfter !== "none") fail(`first image still filtered after a click: ${result.filterAfter}`);
    if ((await thumb.getAttribute("aria-pressed")) !== "true") fail("aria-pressed not updated");
  }

  // Open the first lane, so the screenshot shows a prompt evolution too.
  const lane = page.locator("details.lane > summary").first();
  const open = await page.evaluate(() => document.querySelector("details.lane")?.open ?? true);
  if (!open) {
    await lane.click();
    await page.waitForTimeout(300);
  }
  await page.screenshot({ path: result.screenshot, fullPage: true });
} catch (err) {
  fail(`error: ${err?.stack ?? err}`);
} finally {
  await browser?.close();
}

result.ok = result.failures.length === 0;
console.log(JSON.stringify(result));
process.exit(result.ok ? 0 : 1);

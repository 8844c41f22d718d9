// The browser suite: drives the web interface of a running `leopard demo` in Debian's headless
// Chromium (/usr/bin/chromium, never a downloaded browser) with two users side by side, the way
// agency staff use it, and saves a screenshot of each main screen.
//
//   node tests/browser/suite.mjs        (scripts/check-web-ui.sh starts the server and runs it)
//
// Env: PORT (the demo server's port), SCREENSHOTS (directory, default target/ui),
// CHROMIUM (default /usr/bin/chromium). Every host but 127.0.0.1 is unreachable for the browser,
// and the suite fails if a page asks for anything outside the server.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import assert from "node:assert/strict";

const port = process.env.PORT ?? "8000";
const shots = process.env.SCREENSHOTS ?? "target/ui";
const password = "Leopard-Demo-2026";
const base = `http://acme.localhost:${port}`;
mkdirSync(shots, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: [
    "--no-sandbox",
    "--host-resolver-rules=MAP *.localhost 127.0.0.1, MAP localhost 127.0.0.1, MAP * ~NOTFOUND",
  ],
});

let passed = 0;
let failed = 0;
const foreign = [];
const problems = [];

async function user(name) {
  const context = await browser.newContext({ viewport: { width: 1366, height: 820 } });
  const page = await context.newPage();
  page.on("request", (request) => {
    const url = new URL(request.url());
    if (url.port !== port || !url.hostname.endsWith("localhost")) foreign.push(request.url());
  });
  page.on("pageerror", (error) => problems.push(`${name}: page error: ${error.message}`));
  page.on("console", (message) => {
    // A page answered with a 4xx on purpose (a refused login, a form with errors) is logged by
    // the browser as a failed resource; only script errors count.
    if (message.type() === "error" && !message.text().startsWith("Failed to load resource"))
      problems.push(`${name}: console: ${message.text()}`);
  });
  return { name, context, page };
}

async function login(who, username) {
  const { page } = who;
  await page.goto(`${base}/login/`);
  await page.fill("#username", username);
  await page.fill("#password", password);
  await Promise.all([page.waitForURL(`${base}/`), page.click("button[type=submit]")]);
}

async function step(title, body) {
  try {
    await body();
    passed += 1;
    console.log(`ok - ${title}`);
  } catch (error) {
    failed += 1;
    console.log(`not ok - ${title}\n  ${String(error?.stack ?? error).split("\n").join("\n  ")}`);
  }
}

const admin = await user("admin");
const consultant = await user("consultant");
const clientName = `Zara Browser-${Date.now() % 100000}`;
let clientUrl = "";

await step("the login page names the agency and a wrong password is refused in the form", async () => {
  const { page } = admin;
  await page.goto(`${base}/login/`);
  assert.equal(await page.textContent("h1"), "Acme Corp");
  await page.screenshot({ path: `${shots}/login.png` });
  await page.fill("#username", "admin");
  await page.fill("#password", "wrong-password");
  await page.click("button[type=submit]");
  await page.waitForSelector(".alert");
  assert.match(await page.textContent(".alert"), /No active account/);
});

await step("both users log in and land on the dashboard", async () => {
  // The first load of the dashboard, every byte counted.
  let bytes = 0;
  const count = async (response) => {
    const body = await response.body().catch(() => Buffer.alloc(0));
    bytes += body.length;
  };
  admin.page.on("response", count);
  await login(admin, "admin");
  await admin.page.waitForLoadState("networkidle");
  admin.page.off("response", count);
  console.log(`# dashboard first load: ${bytes} bytes in all`);
  assert.ok(bytes < 150 * 1024, `the dashboard's first load is ${bytes} bytes`);
  await admin.page.screenshot({ path: `${shots}/dashboard.png` });
  await login(consultant, "consultant");
  assert.equal(await consultant.page.textContent("main h1"), "Dashboard");
});

await step("a consultant sees no administration and no delete button", async () => {
  const nav = await consultant.page.textContent("nav.side");
  assert.doesNotMatch(nav, /Users|Groups|Regions/);
  await consultant.page.goto(`${base}/clients/`);
  const first = await consultant.page.locator("tbody tr a").first().getAttribute("href");
  await consultant.page.goto(`${base}${first}`);
  assert.equal(await consultant.page.locator("form[action$='/delete/']").count(), 0);
  await consultant.page.goto(`${base}/`);
});

await step("a client with a validation error shows it inline, then saves once fixed", async () => {
  const { page } = admin;
  await page.goto(`${base}/clients/new/`);
  await page.fill("#f-last_name", clientName.split(" ")[1]);
  await page.fill("#f-email", "not-an-e-mail");
  await page.click("button.primary[type=submit]");
  await page.waitForSelector(".field.invalid");
  const invalid = await page.locator(".field.invalid label").allTextContents();
  assert.ok(invalid.some((label) => label.startsWith("First name")), `invalid: ${invalid}`);
  await page.screenshot({ path: `${shots}/client-form-errors.png` });
  await page.fill("#f-first_name", clientName.split(" ")[0]);
  await page.fill("#f-email", "zara@example.com");
  await page.selectOption("#f-gender", "FEMALE");
  await page.fill("#f-country", "NP");
  const branch = page.locator("#f-branch_id");
  if ((await branch.count()) > 0) await branch.selectOption({ label: "Head Office" });
  await Promise.all([page.waitForURL(/\/clients\/\d+\/$/), page.click("button.primary[type=submit]")]);
  clientUrl = page.url();
  assert.match(await page.textContent("main h1"), new RegExp(clientName));
});

await step("assigning the client to the consultant raises the consultant's bell without a reload", async () => {
  const bell = consultant.page.locator("[data-bell] .count");
  const before = Number(await bell.textContent());
  const marker = await consultant.page.evaluate(() => (window.__notReloaded = true));
  assert.ok(marker);
  const { page } = admin;
  await page.goto(clientUrl);
  await page.selectOption("#assign-to", { label: "Cleo Consult" });
  await Promise.all([
    page.waitForNavigation(),
    page.click("form:has(#assign-to) button[type=submit]"),
  ]);
  assert.match(await page.textContent("dl.props"), /Cleo Consult/);
  await consultant.page.waitForFunction(
    (n) => Number(document.querySelector("[data-bell] .count").textContent) > n,
    before,
    { timeout: 20000 },
  );
  assert.equal(await consultant.page.evaluate(() => window.__notReloaded), true, "no reload");
  await page.screenshot({ path: `${shots}/client.png` });
  await consultant.page.click("[data-bell]");
  await consultant.page.waitForSelector("#bell-menu li");
  assert.match(await consultant.page.textContent("#bell-menu"), /assigned/i);
  await consultant.page.screenshot({ path: `${shots}/bell.png` });
});

await step("the clients list filters, sorts and opens a row with the keyboard", async () => {
  const { page } = admin;
  await page.goto(`${base}/clients/?ordering=first_name`);
  await page.screenshot({ path: `${shots}/clients.png` });
  await page.selectOption("#f-stage", "LEAD");
  await page.waitForURL(/stage=LEAD/);
  const stages = await page.locator("tbody td .chip").allTextContents();
  assert.ok(stages.length > 0 && stages.every((s) => s === "Lead"), `stages: ${stages}`);
  await page.keyboard.press("j");
  await Promise.all([page.waitForURL(/\/clients\/\d+\/$/), page.keyboard.press("Enter")]);
  await page.goto(`${base}/`);
  await page.keyboard.press("/");
  assert.equal(await page.evaluate(() => document.activeElement.id), "global-search");
  await page.keyboard.type(clientName.split(" ")[0]);
  await Promise.all([page.waitForURL(/\/clients\/\?search=/), page.keyboard.press("Enter")]);
  assert.match(await page.textContent("tbody"), new RegExp(clientName));
});

await step("the consultant claims a task of the branch pool", async () => {
  const { page } = consultant;
  await page.goto(`${base}/tasks/`);
  await page.screenshot({ path: `${shots}/tasks.png` });
  const claim = page.locator("form[action$='/claim/']").first();
  assert.ok((await claim.count()) > 0, "a pool task to claim");
  const action = await claim.getAttribute("action");
  await Promise.all([page.waitForURL(`${base}/tasks/`), claim.locator("button").click()]);
  assert.equal(await page.locator(`form[action='${action}']`).count(), 0, "claimed");
});

// ----- visa and college applications (issue 15, screens 5 and 6) ----------------------------
await step("dragging a college application card to the next stage moves it and the client's timeline shows it", async () => {
  const { page } = admin;
  await page.goto(`${base}/college-applications/board/`);
  const columns = page.locator("[data-board] [data-stage]");
  const n = await columns.count();
  assert.ok(n >= 2, `stages on the board: ${n}`);
  let from = -1;
  for (let i = 0; i < n - 1 && from < 0; i += 1) {
    if ((await columns.nth(i).locator("[data-card]").count()) > 0) from = i;
  }
  assert.ok(from >= 0, "a card with a next stage");
  const source = columns.nth(from);
  const target = columns.nth(from + 1);
  const card = source.locator("[data-card]").first();
  const id = await card.getAttribute("data-card");
  const name = async (column) =>
    (await column.locator("h2 span").first().textContent()).replace(/^\d+\.\s*/, "");
  const [fromName, toName] = [await name(source), await name(target)];
  const before = Number(await target.locator("[data-count]").textContent());
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith(`/college-applications/${id}/stage/`)),
    card.dragTo(target, { sourcePosition: { x: 3, y: 3 } }),
  ]);
  assert.equal(response.status(), 200, `the move answered ${response.status()}`);
  await target.locator(`[data-card="${id}"]`).waitFor();
  assert.equal(Number(await target.locator("[data-count]").textContent()), before + 1);
  assert.equal(await target.locator(`[data-card="${id}"] select`).inputValue(), await target.getAttribute("data-stage"));
  await page.screenshot({ path: `${shots}/college-board.png` });
  await page.reload();
  assert.equal(await columns.nth(from + 1).locator(`[data-card="${id}"]`).count(), 1, "stored");
  await page.goto(`${base}/college-applications/${id}/`);
  await Promise.all([page.waitForURL(/\/clients\/\d+\/\?tab=timeline$/), page.click("text=Client timeline")]);
  const moved = `College Application moved from ${fromName} to ${toName}`;
  let text = "";
  for (let tries = 0; tries < 40 && !text.includes(moved); tries += 1) {
    if (tries > 0) {
      await page.waitForTimeout(250);
      await page.reload();
    }
    text = await page.textContent("ul.timeline");
  }
  assert.ok(text.includes(moved), `the timeline shows "${moved}"`);
});

// ----- calendar (issue 15) --------------------------------------------------------------------
await step("create a calendar event", async () => {
  const { page } = admin;
  const title = `Browser review ${Date.now() % 100000}`;
  await page.goto(`${base}/calendar/`);
  assert.match(await page.textContent("main h1"), /^Calendar · /);
  await Promise.all([page.waitForURL(`${base}/calendar/new/`), page.click("a.button.primary[href='/calendar/new/']")]);
  // The form starts at 09:00–10:00 today (UTC); an end before the start is refused inline.
  const start = await page.inputValue("#f-start");
  assert.match(start, /^\d{4}-\d{2}-\d{2}T09:00$/);
  await page.fill("#f-title", title);
  await page.fill("#f-end", start.replace("T09:00", "T08:00"));
  await page.click("button.primary[type=submit]");
  await page.waitForSelector(".field.invalid");
  assert.match(await page.textContent(".field.invalid"), /End time must be after start time/);
  await page.fill("#f-end", start.replace("T09:00", "T10:30"));
  await page.fill("#f-location", "Meeting room 2");
  await page.fill("#f-hex_color", "#6a1b9a");
  await Promise.all([page.waitForURL(/\/calendar\/\?month=\d{4}-\d{2}$/), page.click("button.primary[type=submit]")]);
  const event = page.locator(".cal-month a.cal-ev", { hasText: title });
  assert.equal(await event.count(), 1, "the new event is in the month view");
  const cell = event.locator("xpath=ancestor::div[contains(@class, 'cal-day')]");
  assert.match(await cell.getAttribute("class"), /today/, "on today's cell");
  assert.equal(await event.evaluate((el) => el.style.getPropertyValue("--ev")), "#6a1b9a", "its colour");
  await page.screenshot({ path: `${shots}/calendar.png` });
  await page.goto(`${base}/calendar/?view=week`);
  assert.equal(await page.locator(".cal-week a.cal-ev", { hasText: title }).count(), 1, "and in the week view");
  await page.screenshot({ path: `${shots}/calendar-week.png` });
});

await step("the client's passport tab saves a passport through its form", async () => {
  const { page } = admin;
  assert.ok(clientUrl, "the client created above");
  await page.goto(`${clientUrl}?tab=passport`);
  assert.equal(await page.textContent(".tabs a[aria-current=page]"), "Passport");
  await page.fill("#f-passport_no", "NP1234567");
  await page.fill("#f-passport_country", "NP");
  await page.fill("#f-nationality", "NP");
  await page.fill("#f-country_of_birth", "NP");
  await Promise.all([page.waitForURL(/\?tab=passport$/), page.click("button.primary[type=submit]")]);
  assert.match(await page.textContent("dl.props"), /NP1234567/);
  await page.screenshot({ path: `${shots}/client-passport.png` });
});

await step("a task comment mentioning a colleague shows the mention, and the reminders list", async () => {
  const { page } = consultant;
  await page.goto(`${base}/reminders/`);
  assert.ok((await page.locator("main tbody tr").count()) > 0, "the consultant's reminders");
  await page.screenshot({ path: `${shots}/reminders.png` });
  await page.goto(`${base}/tasks/?view=all`);
  const first = page.locator("main tbody td a[href^='/tasks/']").first();
  await Promise.all([page.waitForURL(/\/tasks\/\d+\/$/), first.click()]);
  await page.fill("#f-comment", "@admin could you check this one? Thanks.");
  await Promise.all([page.waitForURL(/\/tasks\/\d+\/#comments$/), page.click("form.comment-form button[type=submit]")]);
  assert.equal(await page.locator("ol.comments b.mention").last().textContent(), "@admin");
  await page.screenshot({ path: `${shots}/task.png` });
});

await step("the theme switches to dark", async () => {
  const { page } = admin;
  await page.goto(`${base}/clients/`);
  await page.click("[data-theme-toggle]");
  const theme = await page.evaluate(() => document.documentElement.dataset.theme);
  assert.ok(theme === "dark" || theme === "light");
  if (theme !== "dark") await page.click("[data-theme-toggle]");
  await page.screenshot({ path: `${shots}/clients-dark.png` });
  await page.click("[data-theme-toggle]");
});

await step("logging out ends the session", async () => {
  const { page } = admin;
  await page.goto(`${base}/`);
  await Promise.all([page.waitForURL(`${base}/login/`), page.click("form[action='/logout/'] button")]);
  await page.goto(`${base}/clients/`);
  assert.ok(page.url().startsWith(`${base}/login/`));
});

await step("no page asked for anything outside the server, and no script failed", async () => {
  assert.deepEqual(foreign, []);
  assert.deepEqual(problems, []);
});

await browser.close();
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);

// Drives the consoles of a running `coderunner dev` in headless Chromium
// (playwright-core with the system's Chromium). Arguments: the emulator URL,
// the runner URL and the directory for screenshots. Prints one JSON object
// with what the pages showed; any failure exits non-zero.
"use strict";
const { chromium } = require("playwright-core");

const [emulatorUrl, runnerUrl, shots] = process.argv.slice(2);
const TIMEOUT = 20000;

(async () => {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
  });
  const context = await browser.newContext({ viewport: { width: 1400, height: 1100 } });
  context.setDefaultTimeout(TIMEOUT);
  const out = {};
  const problems = [];

  // The runner console stays open: invocations must appear in it live.
  const runner = await context.newPage();
  runner.on("pageerror", (e) => problems.push("runner page: " + e.message));
  await runner.goto(runnerUrl + "/console/");
  await runner.locator("#handlers tbody tr").first().waitFor();
  out.handlers = await runner.locator("#handlers tbody tr").count();

  const emulator = await context.newPage();
  emulator.on("pageerror", (e) => problems.push("emulator page: " + e.message));
  await emulator.goto(emulatorUrl + "/__emulator/console/");
  const result = emulator.locator("#result");

  // Log in as alice with the keyboard: label -> select -> button.
  const user = emulator.getByLabel("User", { exact: true });
  await emulator.locator("#login-user option[value='alice@example.com']").waitFor({ state: "attached" });
  await user.selectOption("alice@example.com");
  await emulator.getByRole("button", { name: "Log in" }).focus();
  await emulator.keyboard.press("Enter");
  await result.filter({ hasText: "Log in (HTTP 200)" }).waitFor();
  out.login = await result.textContent();

  // Create a post as alice.
  await emulator.locator("#create-user option[value='alice@example.com']").waitFor({ state: "attached" });
  await emulator.locator("#create-user").selectOption("alice@example.com");
  await emulator.getByLabel("Table", { exact: true }).fill("Post");
  await emulator.getByLabel("Row (JSON)").fill(JSON.stringify({ title: "Written in Chromium" }));
  await emulator.getByRole("button", { name: "Create row" }).click();
  await result.filter({ hasText: "Create in Post (HTTP 200)" }).waitFor();
  out.created = await result.textContent();

  // A post the beforeCreate handler rejects.
  await emulator.getByLabel("Row (JSON)").fill(JSON.stringify({ title: "   " }));
  await emulator.getByRole("button", { name: "Create row" }).click();
  await result.filter({ hasText: "Create in Post (HTTP 400)" }).waitFor();
  out.rejected = await result.textContent();
  await emulator.locator("#tasks tbody tr").first().waitFor();
  await emulator.screenshot({ path: shots + "/emulator-console.png", fullPage: true });

  // Back to the runner console, never reloaded: the live view shows both.
  await runner.bringToFront();
  const ok = runner.locator("#invocations tbody tr[data-event='afterCreate'][data-outcome='ok']").first();
  await ok.waitFor();
  out.afterCreate = {
    identities: (await ok.locator("td.identities").textContent()).trim(),
    calls: (await ok.locator("td.calls").textContent()).trim(),
    outcome: (await ok.locator("td.outcome").textContent()).trim(),
  };
  const failed = runner.locator("#invocations tbody tr[data-event='beforeCreate'][data-outcome='error']").first();
  await failed.waitFor();
  out.rejectedInvocation = {
    outcome: (await failed.locator("td.outcome").textContent()).trim(),
    error: (await failed.locator("td.error").textContent()).trim(),
  };
  await runner.waitForFunction(() => /Logins\s*1/.test(document.querySelector("#session").textContent));
  out.session = (await runner.locator("#session").textContent()).replace(/\s+/g, " ").trim();
  await runner.waitForFunction(() => Number(document.querySelector("#now-throughput").textContent) > 0);
  await runner.screenshot({ path: shots + "/runner-console.png", fullPage: true });

  // The outcome filter keeps only failures.
  await runner.getByLabel("Outcome").selectOption("error");
  await runner.waitForFunction(() => {
    const rows = [...document.querySelectorAll("#invocations tbody tr")];
    return rows.length > 0 && rows.every((r) => r.dataset.outcome === "error");
  });
  out.filteredOutcomes = await runner.locator("#invocations tbody tr").evaluateAll(
    (rows) => [...new Set(rows.map((r) => r.dataset.outcome))]);

  out.html = { runner: await runner.content(), emulator: await emulator.content() };
  out.problems = problems;
  console.log(JSON.stringify(out));
  await browser.close();
})().catch((e) => {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(1);
});

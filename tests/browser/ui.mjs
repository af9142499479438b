// Skiff's web UI in real headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core) against a real `skiff serve`: the must-hold flow of issue 12, each step
// asserted, and a screenshot of every page at 1280x900 and at 375 px wide in
// target/ui-screenshots/. Exits non-zero on any failure.
//
//   node tests/browser/ui.mjs        (scripts/browser-test builds skiff and runs this)
//
// A step whose server API is not there yet (another branch builds it) fails the run too,
// unless UI_TEST_ALLOW_MISSING=1, which reports it as not covered instead.
import { chromium } from "playwright-core";
import { mkdirSync, readdirSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { createHmac } from "node:crypto";
import { join } from "node:path";
import { Skiff, ROOT, humanSize, basic } from "./skiff.mjs";

const SHOTS = join(ROOT, "target/ui-screenshots");
const ALLOW_MISSING = process.env.UI_TEST_ALLOW_MISSING === "1";
const DESKTOP = { width: 1280, height: 900 };
const PHONE = { width: 375, height: 812 };
const XSS = `<script>window.__xss=1</script>"><img src=x onerror="window.__xss=2;alert('xss')">`;

const results = [];
const problems = []; // script errors, native dialogs, CSP violations: any fails the run
let server;
let browser;

function assert(cond, msg) {
  if (!cond) throw new Error(`assertion failed: ${msg}`);
}
function eq(got, want, msg) {
  if (got !== want) throw new Error(`${msg}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
}

class Missing extends Error {}

/** Which server APIs exist (other branches build some of them). */
const have = {};
async function probe() {
  const s = server;
  have.session = (await s.req("GET", "/api/v1/session")).status === 200;
  have.browse = (await s.req("GET", "/api/v1/browse")).status === 200;
  have.stars = (await s.req("GET", "/api/v1/stars")).status === 401;
  // Until these exist, their paths fall to `GET /repositories/{name}` (401 when anonymous).
  have.comments = (await s.req("GET", "/api/v1/repositories/alice/web/-/comments")).status === 200;
  have.manifests = (await s.req("GET", "/api/v1/repositories/alice/web/-/manifests/1.0")).status === 200;
  have.images = [200, 404].includes((await s.req("GET", "/api/v1/repositories/alice/oldie/-/images/" + "0".repeat(64))).status);
  have.webhooks = (await s.req("GET", "/api/v1/repositories/alice/web/-/webhooks", { auth: basic("alice", "alicepass1") })).status === 200;
}

async function step(name, needs, fn) {
  const missing = needs.filter((n) => !have[n]);
  if (missing.length) {
    results.push({ name, status: "not covered", why: `missing API: ${missing.join(", ")}` });
    console.log(`  -  ${name}: NOT COVERED (missing API: ${missing.join(", ")})`);
    return false;
  }
  const t0 = Date.now();
  try {
    await fn();
    results.push({ name, status: "ok" });
    console.log(`  ✓  ${name} (${Date.now() - t0} ms)`);
    return true;
  } catch (e) {
    results.push({ name, status: "FAILED", why: e.message });
    console.log(`  ✗  ${name}: ${e.stack || e.message}`);
    if (problems.length) console.log(`     meanwhile:\n     ${problems.join("\n     ")}`);
    for (const p of pages) {
      try {
        await p.page.screenshot({ path: join(SHOTS, `FAILED-${p.who}.png`), fullPage: true });
      } catch (_) {
        // the page may be gone
      }
    }
    throw e;
  }
}

const pages = [];
/** A browser context (its own cookies) and a page in it, watched for script errors, dialogs and CSP reports. */
async function person(who) {
  const context = await browser.newContext({ viewport: DESKTOP, baseURL: server.url });
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: server.url });
  const page = await context.newPage();
  page.on("dialog", async (d) => {
    problems.push(`${who}: a native ${d.type()} dialog opened: ${d.message()}`);
    await d.dismiss();
  });
  page.on("pageerror", (e) => problems.push(`${who}: script error: ${e.message}`));
  page.on("console", (m) => {
    const t = m.text();
    // A 401/404 the app expects (a private repository, say) is logged by Chromium as a failed
    // resource load; everything else on the error console is a problem.
    if (m.type() === "error" && !t.startsWith("Failed to load resource")) problems.push(`${who}: console: ${t}`);
  });
  const p = { who, context, page };
  pages.push(p);
  return p;
}

/** Loads `path` and waits for the app to draw it. */
async function open(page, path) {
  await page.goto(path);
  await page.waitForSelector("body[data-ready='1']");
  await page.waitForSelector("#main:not([aria-busy])");
}

/** Waits for the app to finish a client-side navigation. */
async function settled(page) {
  await page.waitForSelector("#main:not([aria-busy])");
}

async function shoot(page, name) {
  await settled(page);
  await page.screenshot({ path: join(SHOTS, `${name}-1280.png`), fullPage: false });
  await page.setViewportSize(PHONE);
  await page.waitForTimeout(50);
  // The layout fits a phone: nothing wider than the screen.
  const wide = await page.evaluate(() => document.documentElement.scrollWidth);
  assert(wide <= PHONE.width + 1, `${name}: the page is ${wide}px wide at ${PHONE.width}px`);
  await page.screenshot({ path: join(SHOTS, `${name}-375.png`), fullPage: true });
  await page.setViewportSize(DESKTOP);
}

async function signIn(page, user, password) {
  await open(page, "/signin");
  await page.fill("#signin-form input[name=username]", user);
  await page.fill("#signin-form input[name=password]", password);
  await page.click("#signin-form button[type=submit]");
  await page.waitForSelector(`#nav a[href='/account']:text-is('${user}')`);
  await settled(page);
}

async function confirmDialog(page, typed) {
  await page.waitForSelector("#confirm[open]");
  if (typed) await page.fill("#confirm-extra input", typed);
  await page.click("#confirm-ok");
  await page.waitForSelector("#confirm[open]", { state: "detached" });
}

async function text(page, selector) {
  return (await page.locator(selector).first().textContent()).trim();
}

async function rowNames(page, selector) {
  return page.$$eval(selector, (rows) => rows.map((r) => r.dataset.repo || r.dataset.tag));
}

async function main() {
  mkdirSync(SHOTS, { recursive: true });
  // Every run leaves its own screenshots: none of an earlier run's failures.
  for (const f of readdirSync(SHOTS)) if (f.startsWith("FAILED-")) rmSync(join(SHOTS, f));
  // The test's webhook receiver listens on 127.0.0.1: repositories' hooks may send there.
  server = await Skiff.start(["[webhooks]", "allow_loopback = true"]);
  console.log(`skiff at ${server.url}; screenshots in ${SHOTS}`);
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--headless", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  server.cli(["user", "add", "root", "--email", "root@example.com", "--admin"], "rootpass1\n");
  await server.register("bob", "bobpass1");
  await probe(); // session and browse are known before anyone signs in

  const alice = await person("alice");
  const bob = await person("bob");
  const anon = await person("anonymous");
  const root = await person("root");
  const A = alice.page;

  await step("the app loads with its security headers, no script errors", [], async () => {
    const resp = await anon.page.goto("/signin");
    const h = resp.headers();
    assert(h["content-security-policy"].includes("script-src 'self'"), "CSP");
    eq(h["x-frame-options"], "DENY", "X-Frame-Options");
    await anon.page.waitForSelector("body[data-ready='1']");
    await shoot(anon.page, "signin");
    await open(anon.page, "/register");
    await shoot(anon.page, "register");
    await open(anon.page, "/r/alice/web/-/nope");
    eq(await text(anon.page, "#main h1"), "Not found", "unknown path");
  });

  const registered = await step("register in the UI (and land signed in)", ["session"], async () => {
    await open(A, "/register");
    await A.fill("#register-form input[name=username]", "alice");
    await A.fill("#register-form input[name=email]", "alice@example.com");
    await A.fill("#register-form input[name=password]", "alicepass1");
    await A.fill("#register-form input[name=password2]", "alicepass1");
    await A.click("#register-form button[type=submit]");
    await A.waitForSelector("#nav a[href='/account']:text-is('alice')");
    await A.waitForURL(`${server.url}/`);
  });
  if (!registered) await server.register("alice", "alicepass1");

  // Pushes over HTTP, as registry clients make them.
  const auth = await server.v2auth("alice", "alicepass1", "alice/web");
  const one = await server.pushImage(auth, "alice/web", "1.0");
  await server.manifest(auth, "alice/web", "latest", one.mediaType, JSON.parse((await server.req("GET", `/v2/alice/web/manifests/1.0`, { auth, headers: { Accept: one.mediaType } })).text));
  const multi = await server.pushIndex(auth, "alice/web", "multi");
  const v1 = await server.pushV1("alice", "alicepass1", "alice/oldie", "latest", 2);
  await server.createEmptyV1("alice", "alicepass1", "alice/empty");
  const bigAuth = await server.v2auth("alice", "alicepass1", "alice/big");
  const big = await server.pushImage(bigAuth, "alice/big", "t0000", { layerBytes: 1000 });
  const bigDoc = (await server.req("GET", `/v2/alice/big/manifests/t0000`, { auth: bigAuth, headers: { Accept: big.mediaType } })).text;
  const t0 = Date.now();
  for (let i = 1; i < 1000; i += 25) {
    await Promise.all(
      Array.from({ length: Math.min(25, 1000 - i) }, (_, k) =>
        server.expect(201, "PUT", `/v2/alice/big/manifests/t${String(i + k).padStart(4, "0")}`, { auth: bigAuth, body: bigDoc, headers: { "Content-Type": big.mediaType } })
      )
    );
  }
  console.log(`  (pushed alice/web over v2 with a 2-platform index, alice/oldie over v1, alice/big with 1,000 tags in ${Date.now() - t0} ms)`);
  await probe();

  await step("sign out, then sign in", ["session"], async () => {
    await open(A, "/");
    await A.click("#signout");
    await A.waitForSelector("#nav a[href='/signin']");
    await signIn(A, "alice", "alicepass1");
    await signIn(bob.page, "bob", "bobpass1");
    await signIn(root.page, "root", "rootpass1");
  });

  await step("the repository list, and search", ["browse"], async () => {
    await open(A, "/");
    const names = await rowNames(A, "table.repos tbody tr");
    for (const n of ["alice/big", "alice/empty", "alice/oldie", "alice/web"]) assert(names.includes(n), `${n} listed: ${names}`);
    await shoot(A, "home");
    await A.fill("#q", "web");
    await A.press("#q", "Enter");
    await A.waitForURL(/\/\?q=web$/);
    await settled(A);
    eq((await rowNames(A, "table.repos tbody tr")).join(","), "alice/web", "search for web");
    eq(await text(A, "#count"), "1 repository", "count");
    await shoot(A, "search");
  });

  const webRow = (tag) => `#tags tr[data-tag='${tag}']`;
  await step("a repository pushed over v2: digests, sizes, platforms", ["browse"], async () => {
    await A.click("table.repos a:text-is('alice/web')");
    await A.waitForURL(/\/r\/alice\/web$/);
    await settled(A);
    eq(await text(A, "#repo-name"), "alice/web", "name");
    eq((await rowNames(A, "#tags tbody tr")).join(","), "1.0,latest,multi", "tags");
    eq(await A.getAttribute(`${webRow("1.0")} code.digest`, "title"), one.digest, "full digest in the title");
    eq(await text(A, `${webRow("1.0")} code.digest`), one.digest.slice(0, 19), "short digest");
    eq(await text(A, `${webRow("1.0")} td.size`), humanSize(one.bytes), "size of 1.0 (config + layer)");
    eq(await text(A, `${webRow("1.0")} td.platforms`), "linux/amd64", "platform of 1.0");
    eq(await A.getAttribute(`${webRow("multi")} code.digest`, "title"), multi.digest, "index digest");
    eq(await text(A, `${webRow("multi")} td.platforms`), "linux/amd64, linux/arm64", "platforms of the index");
    eq(await text(A, `${webRow("multi")} td.size`), humanSize(multi.bytes), "size of the index (its images' blobs)");
    eq(await text(A, `${webRow("1.0")} code.pull`), `docker pull ${server.host}/alice/web:1.0`, "pull line");
    await shoot(A, "repository-v2");
  });

  await step("an image's layers and history; an index's platforms", ["browse", "manifests"], async () => {
    await A.click(`${webRow("1.0")} a:text-is('1.0')`);
    await A.waitForURL(/\/r\/alice\/web\/-\/tags\/1\.0$/);
    await settled(A);
    eq(await text(A, "code.full-digest"), one.digest, "digest");
    eq(await A.locator("table.layers tbody tr").count(), 1, "one layer");
    eq(await A.getAttribute("table.layers code.digest", "title"), one.layer.digest, "layer digest");
    eq(await text(A, "#image-size"), humanSize(one.bytes), "image size");
    eq(await A.locator("table.history tbody tr").count(), 2, "history entries");
    eq(await text(A, "table.history tbody tr:first-child td"), "2026-01-02 03:04:00 UTC", "a history entry's time");
    await shoot(A, "image-v2");
    await A.goBack();
    await A.waitForSelector(webRow("multi"));
    await A.click(`${webRow("multi")} a:text-is('multi')`);
    await A.waitForSelector("table.platforms");
    const plats = await A.$$eval("table.platforms tbody tr", (rs) => rs.map((r) => r.dataset.platform));
    eq(plats.join(","), "linux/amd64,linux/arm64", "platforms of the index");
    await shoot(A, "image-index");
  });

  await step("a repository pushed over v1: image id, size, ancestry", ["browse"], async () => {
    await open(A, "/r/alice/oldie");
    const row = "#tags tr[data-tag='latest']";
    eq(await A.getAttribute(row, "data-protocol"), "v1", "protocol");
    const top = v1[v1.length - 1];
    eq(await A.getAttribute(`${row} code.digest`, "title"), top.id, "image id");
    eq(await text(A, `${row} td.size`), humanSize(v1.reduce((n, i) => n + i.layer.length, 0)), "size (the layers of the chain)");
    eq(await text(A, `${row} td.platforms`), "linux/amd64", "platform");
    await shoot(A, "repository-v1");
  });

  await step("a v1 image's ancestry", ["browse", "images"], async () => {
    await A.click("#tags tr[data-tag='latest'] a:text-is('latest')");
    await A.waitForSelector("table.ancestry");
    eq(await A.locator("table.ancestry tbody tr").count(), 2, "ancestry of two images");
    await shoot(A, "image-v1");
  });

  await step("an empty repository says how to push to it", ["browse"], async () => {
    await open(A, "/r/alice/empty");
    const help = await text(A, "#empty-repo");
    assert(help.includes(`docker push ${server.host}/alice/empty:latest`), help);
    assert(!help.includes("No v2 tags"), help);
    await shoot(A, "repository-empty");
  });

  await step("copy the pull line", ["browse"], async () => {
    await open(A, "/r/alice/web");
    await A.click(`${webRow("1.0")} button.copy`);
    await A.waitForSelector(`${webRow("1.0")} button.copy:text-is('Copied')`);
    const clip = await A.evaluate(() => navigator.clipboard.readText());
    eq(clip, `docker pull ${server.host}/alice/web:1.0`, "clipboard");
  });

  await step("star it, see it in my stars", ["session", "browse", "stars"], async () => {
    await open(A, "/r/alice/web");
    eq(await A.getAttribute("#star", "aria-pressed"), "false", "not starred");
    await A.click("#star");
    await A.waitForSelector("#star[aria-pressed='true']");
    eq(await text(A, "#star-count"), "1", "count");
    await open(A, "/r/alice/web");
    eq(await A.getAttribute("#star", "aria-pressed"), "true", "still starred after a reload");
    await A.click("#nav a[href='/stars']");
    await A.waitForURL(/\/stars$/);
    await settled(A);
    eq((await rowNames(A, "table.repos tbody tr")).join(","), "alice/web", "my stars");
    await shoot(A, "stars");
  });

  await step("comment, edit it; markup in a comment stays text", ["session", "browse", "comments"], async () => {
    await open(A, "/r/alice/web");
    await A.fill("#comment-body", "Works on arm64 too.");
    await A.click("#comment-form button[type=submit]");
    await A.waitForSelector("li.comment .body:text-is('Works on arm64 too.')");
    await A.click("li.comment button:text-is('Edit')");
    await A.fill("li.comment textarea", "Works on arm64 and amd64.");
    await A.click("li.comment button:text-is('Save')");
    await A.waitForSelector("li.comment .body:text-is('Works on arm64 and amd64.')");
    await A.fill("#comment-body", XSS);
    await A.click("#comment-form button[type=submit]");
    await A.waitForFunction(() => document.querySelectorAll("li.comment").length === 2);
    await open(A, "/r/alice/web"); // as stored, drawn again
    const bodies = await A.$$eval("li.comment .body", (els) => els.map((e) => e.textContent));
    eq(bodies[1], XSS, "the comment shows as the text it is");
    eq(await A.locator("#comments img, #comments script").count(), 0, "no element from the comment");
    eq(await A.evaluate(() => window.__xss), undefined, "no script ran");
    await shoot(A, "repository-comments");
  });

  await step("markup in a description stays text", ["session", "browse"], async () => {
    await open(A, "/r/alice/web/-/settings");
    await A.fill("#description-input", `A web app. ${XSS}`);
    await A.click("#description-form button[type=submit]");
    await A.waitForSelector("#flash:text-is('Description saved.')");
    await shoot(A, "settings");
    await A.click(".crumbs a");
    await A.waitForURL(/\/r\/alice\/web$/);
    await settled(A);
    eq(await text(A, "#description"), `A web app. ${XSS}`, "description as text");
    eq(await A.locator("main img, main script").count(), 0, "no element from the description");
    await open(anon.page, "/?q=web");
    eq(await anon.page.locator("main img").count(), 0, "none in the list either");
    eq(await A.evaluate(() => window.__xss), undefined, "no script ran");
    eq(await anon.page.evaluate(() => window.__xss), undefined, "no script ran (list)");
  });

  await step("make it private: it vanishes for another user and for an anonymous visitor", ["session", "browse"], async () => {
    await open(bob.page, "/");
    assert((await rowNames(bob.page, "table.repos tbody tr")).includes("alice/web"), "bob sees it while public");
    await open(A, "/r/alice/web/-/settings");
    await A.click("#visibility-toggle");
    await confirmDialog(A);
    await A.waitForSelector("#visibility-state .badge.private");
    for (const p of [bob.page, anon.page]) {
      await open(p, "/");
      const names = await rowNames(p, "table.repos tbody tr");
      assert(!names.includes("alice/web") && names.includes("alice/oldie"), `private repository still listed: ${names}`);
      await open(p, "/r/alice/web");
      await p.waitForSelector("#repo-missing");
      eq(await p.locator("#tags").count(), 0, "no tags shown");
    }
    eq((await server.req("GET", "/api/v1/browse/alice/web")).status, 404, "the API hides it too");
    await shoot(bob.page, "repository-hidden");
  });

  await step("add a collaborator: it appears for them", ["session", "browse"], async () => {
    await open(A, "/r/alice/web/-/settings");
    await A.fill("#collaborator-input", "bob");
    await A.click("#collaborator-form button[type=submit]");
    await A.waitForSelector("#collaborators li[data-user='bob']");
    await open(bob.page, "/");
    assert((await rowNames(bob.page, "table.repos tbody tr")).includes("alice/web"), "bob sees it now");
    await open(bob.page, "/r/alice/web");
    await bob.page.waitForSelector(webRow("1.0"));
    assert(await bob.page.locator("#repo-name + .badge.private").count(), "marked private");
    await open(anon.page, "/r/alice/web");
    await anon.page.waitForSelector("#repo-missing");
  });

  await step("delete a tag", ["session", "browse"], async () => {
    await open(A, "/r/alice/web");
    await A.click(`${webRow("latest")} button:text-is('Delete')`);
    await confirmDialog(A);
    await A.waitForSelector("#flash:text-is('Deleted tag latest.')");
    await A.waitForSelector(webRow("latest"), { state: "detached" });
    await settled(A);
    eq((await rowNames(A, "#tags tbody tr")).join(","), "1.0,multi", "tags after the delete");
    const api = await server.req("GET", "/api/v1/repositories/alice/web/-/tags", { auth: basic("alice", "alicepass1") });
    eq(api.data.tags.map((t) => t.name).join(","), "1.0,multi", "the server's tags");
  });

  await step("a webhook: added in settings, one signed event per push, its delivery log, redeliver", ["session", "browse", "webhooks"], async () => {
    const got = [];
    const receiver = createServer((req, res) => {
      let body = "";
      req.on("data", (d) => (body += d));
      req.on("end", () => {
        got.push({ headers: req.headers, body });
        res.writeHead(200).end("ok");
      });
    });
    await new Promise((r) => receiver.listen(0, "127.0.0.1", r));
    const hookUrl = `http://127.0.0.1:${receiver.address().port}/hook`;
    const waitFor = async (n) => {
      const until = Date.now() + 15000;
      while (got.length < n && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
      eq(got.length, n, "events received");
    };
    try {
      await open(A, "/r/alice/web/-/settings");
      await A.fill("#webhook-form input[type=url]", hookUrl);
      await A.fill("#webhook-form input[aria-label='Webhook secret']", "hook-secret-1");
      await A.click("#webhook-form button[type=submit]");
      await A.waitForSelector("#webhooks .notice code");
      await A.waitForSelector(`#webhooks .hook code:text-is('${hookUrl}')`);
      await server.manifest(auth, "alice/web", "2.0", one.mediaType, JSON.parse((await server.req("GET", `/v2/alice/web/manifests/1.0`, { auth, headers: { Accept: one.mediaType } })).text));
      await waitFor(1);
      const sig = "sha256=" + createHmac("sha256", "hook-secret-1").update(got[0].body).digest("hex");
      eq(got[0].headers["x-skiff-signature-256"], sig, "signature");
      const event = JSON.parse(got[0].body);
      eq(event.events[0].action, "push", "a push event");
      eq(event.events[0].target.repository, "alice/web", "of the repository");
      await open(A, "/r/alice/web/-/settings");
      await A.click("#webhooks .hook button:text-is('Deliveries')");
      await A.waitForSelector("#webhooks .deliveries .badge.delivered");
      await shoot(A, "settings-webhooks");
      await A.click("#webhooks .deliveries button:text-is('Redeliver')");
      await A.waitForSelector("#flash:text-is('Queued for redelivery.')");
      await waitFor(2);
      eq(got[1].body, got[0].body, "the same event again");
      await server.expect(200, "DELETE", "/api/v1/repositories/alice/web/-/tags/2.0", { auth: basic("alice", "alicepass1") });
    } finally {
      receiver.close();
    }
  });

  await step("a repository of 1,000 tags renders in under a second, 50 at a time; back/forward", ["browse"], async () => {
    await open(A, "/"); // warm: the app's files are cached, as for any second page
    const times = [];
    for (let i = 0; i < 3; i++) {
      const start = Date.now();
      await A.goto("/r/alice/big");
      await A.waitForSelector("#tags tbody tr", { state: "visible" });
      times.push(Date.now() - start);
    }
    console.log(`     1,000-tag page: ${times.join(", ")} ms (navigation to the table visible)`);
    assert(Math.max(...times) < 1000, `renders in ${times} ms`);
    eq(await A.locator("#tags tbody tr").count(), 50, "one page of 50");
    eq(await A.getAttribute("#tags tbody tr:first-child", "data-tag"), "t0000", "first tag");
    await shoot(A, "repository-1000-tags");
    // Back and forward through pages the app drew itself (History API).
    await open(A, "/");
    await A.click("table.repos a:text-is('alice/big')");
    await A.waitForSelector("#tags tbody tr[data-tag='t0000']");
    const start = Date.now();
    await A.click("#tags .pager a:text('Next 50')");
    await A.waitForSelector("#tags tbody tr[data-tag='t0050']");
    assert(Date.now() - start < 1000, "next page in under a second");
    eq(await A.getAttribute("#tags tbody tr:last-child", "data-tag"), "t0099", "second page ends at t0099");
    assert(A.url().endsWith("/r/alice/big?last=t0049"), A.url());
    await A.goBack();
    await A.waitForSelector("#tags tbody tr[data-tag='t0000']");
    assert(A.url().endsWith("/r/alice/big"), A.url());
    await A.goBack();
    await A.waitForSelector("table.repos");
    eq(new URL(A.url()).pathname, "/", "back to the list");
    await A.goForward();
    await A.waitForSelector("#tags tbody tr[data-tag='t0000']");
    await A.goForward();
    await A.waitForSelector("#tags tbody tr[data-tag='t0050']");
    eq(await A.title(), "alice/big · Skiff", "title");
  });

  await step("delete a repository, confirmed by typing its name", ["session", "browse"], async () => {
    await open(A, "/r/alice/empty/-/settings");
    await A.click("#delete-repo");
    await A.waitForSelector("#confirm[open]");
    assert(await A.locator("#confirm-ok:disabled").count(), "disabled until the name is typed");
    await confirmDialog(A, "alice/empty");
    await A.waitForURL(`${server.url}/`);
    await settled(A);
    assert(!(await rowNames(A, "table.repos tbody tr")).includes("alice/empty"), "gone from the list");
  });

  await step("account: access tokens (create, list, revoke)", ["session"], async () => {
    await open(A, "/account");
    await A.fill("#token-form input[aria-label='Token name']", "ci");
    await A.click("#token-form button[type=submit]");
    await A.waitForSelector("#tokens .notice code.pull");
    const login = await text(A, "#tokens .notice code.pull");
    assert(login.startsWith("docker login -u"), login);
    await A.waitForSelector("#tokens tr[data-token]");
    await shoot(A, "account");
    await A.click("#tokens tr[data-token] button:text-is('Revoke')");
    await confirmDialog(A);
    await A.waitForSelector("#tokens p.muted:text-is('No tokens.')");
  });

  await step("admin: users, storage, gc preview", ["session"], async () => {
    const R = root.page;
    await open(R, "/admin");
    for (const u of ["alice", "bob", "root"]) await R.waitForSelector(`#users tr[data-user='${u}']`);
    await R.waitForSelector("#usage .stat");
    await R.click("#gc-preview");
    await R.waitForSelector("#gc-report:has-text('Preview')");
    await R.click(`#users tr[data-user='bob'] button:text-is('Deactivate')`);
    await R.waitForSelector(`#users tr[data-user='bob'] button:text-is('Activate')`);
    await R.click(`#users tr[data-user='bob'] button:text-is('Activate')`);
    await R.waitForSelector(`#users tr[data-user='bob'] button:text-is('Deactivate')`);
    await shoot(R, "admin");
    await open(bob.page, "/admin");
    await bob.page.waitForSelector("main p.error");
  });

  await step("a change without the CSRF token, or from another origin, is refused", ["session"], async () => {
    const session = await A.evaluate(() => fetch("/api/v1/session").then((r) => r.json()));
    assert(session.user && session.user.name === "alice" && session.csrf, "signed in with a token");
    const path = "/api/v1/repositories/alice/web/-/description";
    const body = { description: "forged" };
    const origin = server.url;
    const noToken = await A.request.put(path, { data: body, headers: { Origin: origin } });
    eq(noToken.status(), 403, "no X-CSRF-Token");
    const wrongToken = await A.request.put(path, { data: body, headers: { Origin: origin, "X-CSRF-Token": "0".repeat(session.csrf.length) } });
    eq(wrongToken.status(), 403, "a wrong X-CSRF-Token");
    const forged = await A.request.put(path, { data: body, headers: { Origin: "http://evil.example", "X-CSRF-Token": session.csrf } });
    eq(forged.status(), 403, "another Origin");
    const fromPage = await A.evaluate((p) => fetch(p, { method: "PUT", headers: { "Content-Type": "application/json" }, body: '{"description":"forged"}' }).then((r) => r.status), path);
    eq(fromPage, 403, "the page's own fetch without the token");
    const desc = (await server.req("GET", "/api/v1/repositories/alice/web", { auth: basic("alice", "alicepass1") })).data.description;
    assert(desc !== "forged", "nothing changed");
    const real = await A.request.put(path, { data: { description: "Real." }, headers: { Origin: origin, "X-CSRF-Token": session.csrf } });
    eq(real.status(), 200, "with the token, from this origin");
  });

  await step("a new password ends the session; the new one signs in", ["session"], async () => {
    await open(A, "/account");
    await A.fill("#password-form input[name=current]", "alicepass1");
    await A.fill("#password-form input[name=password]", "alicepass2");
    await A.fill("#password-form input[name=password2]", "alicepass2");
    await A.click("#password-form button[type=submit]");
    await A.waitForURL(/\/signin\?next=/);
    await A.waitForSelector("#nav a[href='/signin']");
    const s = await A.evaluate(() => fetch("/api/v1/session").then((r) => r.json()));
    eq(s.user, null, "the session ended with the password change");
    await signIn(A, "alice", "alicepass2");
  });

  await step("sign out", ["session"], async () => {
    await open(A, "/account");
    await A.click("#signout");
    await A.waitForSelector("#nav a[href='/signin']");
    await open(A, "/account");
    await A.waitForURL(/\/signin\?next=/);
    const s = await A.evaluate(() => fetch("/api/v1/session").then((r) => r.json()));
    eq(s.user, null, "no session");
    if (have.browse) {
      await open(A, "/r/alice/web");
      await A.waitForSelector("#repo-missing");
    }
  });

  await step("no script error, native dialog or CSP violation on any page", [], async () => {
    assert(problems.length === 0, problems.join("\n"));
  });
}

let code = 0;
try {
  await main();
} catch (e) {
  if (!results.some((r) => r.status === "FAILED")) console.log(`✗ ${e.stack || e}`);
  code = 1;
} finally {
  if (browser) await browser.close().catch(() => {});
  if (server) server.stop();
}
const missing = results.filter((r) => r.status === "not covered");
console.log(`browser test: ${results.filter((r) => r.status === "ok").length} passed, ${results.filter((r) => r.status === "FAILED").length} failed, ${missing.length} not covered`);
if (missing.length && !ALLOW_MISSING) {
  console.log("steps not covered (their APIs are missing) fail the run; UI_TEST_ALLOW_MISSING=1 reports them only");
  code = 1;
}
if (problems.length) console.log(problems.join("\n"));
process.exit(code);

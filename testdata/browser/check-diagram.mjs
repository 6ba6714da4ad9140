// Opens a `busbar diagram --format html` page in headless Chromium (Debian's, driven by
// playwright-core) and checks it as a user would use it. Prints one JSON line with what it
// measured; exits 1 with the failures on stderr.
//
//   node check-diagram.mjs --playwright DIR --chromium PATH --html FILE --nodes N
//        [--search TOPIC] [--service NAME --location PREFIX] [--screenshot PNG]
//
// Checks: no console error, no request leaves the file; the page has N nodes; with the real
// font, no two boxes overlap and no text lies on another text or on a box not its own;
// searching TOPIC marks exactly its node; clicking service NAME shows its permissions with
// locations starting with PREFIX; clicking a subscription label shows its retry policy,
// filter and dead-letter queue; scrolling zooms and dragging pans.

import { pathToFileURL } from "node:url";
import path from "node:path";

const args = {};
for (let i = 2; i < process.argv.length; i += 2) {
  args[process.argv[i].replace(/^--/, "")] = process.argv[i + 1];
}
const { chromium } = await import(pathToFileURL(path.join(args.playwright, "index.mjs")).href);

const failures = [];
function check(ok, what) {
  if (!ok) failures.push(what);
}

const browser = await chromium.launch({
  executablePath: args.chromium,
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
const report = {};
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 800 } });
  page.setDefaultTimeout(5000);
  const errors = [];
  page.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning") errors.push(`${m.type()}: ${m.text()}`);
  });
  page.on("pageerror", (e) => errors.push(`page error: ${e.message}`));
  const url = pathToFileURL(path.resolve(args.html)).href;
  const requests = [];
  page.on("request", (r) => {
    if (r.url() !== url) requests.push(r.url());
  });
  await page.goto(url, { waitUntil: "load" });

  const nodes = await page.locator("g.node").count();
  report.nodes = nodes;
  check(nodes === Number(args.nodes), `${nodes} nodes on the page, the model has ${args.nodes}`);

  // Geometry with the font Chromium really uses, measured at 1:1 (scaled far down, Chromium
  // rounds glyph metrics to device pixels).
  const geometry = await page.evaluate(() => {
    const svg = document.querySelector("#view svg");
    const zoomed = svg.getAttribute("viewBox");
    const full = svg.viewBox.baseVal;
    svg.style.width = full.width + "px";
    svg.style.height = full.height + "px";
    const items = [];
    for (const g of svg.querySelectorAll("g.node, g.edge")) {
      const owner = g.getAttribute("data-node") || "edge " + g.getAttribute("data-edge");
      for (const el of g.querySelectorAll(":scope > rect.box, :scope > text")) {
        const b = el.getBBox();
        items.push({ owner, kind: el.tagName, text: el.textContent, x0: b.x, y0: b.y, x1: b.x + b.width, y1: b.y + b.height });
      }
    }
    svg.style.width = "";
    svg.style.height = "";
    svg.setAttribute("viewBox", zoomed);
    const eps = 0.2;
    const overlap = (a, b) => a.x0 < b.x1 - eps && b.x0 < a.x1 - eps && a.y0 < b.y1 - eps && b.y0 < a.y1 - eps;
    const inside = (a, b) => a.x0 >= b.x0 - eps && a.x1 <= b.x1 + eps && a.y0 >= b.y0 - eps && a.y1 <= b.y1 + eps;
    const problems = [];
    for (let i = 0; i < items.length && problems.length < 10; i++) {
      for (let j = i + 1; j < items.length; j++) {
        const a = items[i], b = items[j];
        const sameOwner = a.owner === b.owner;
        if (sameOwner && a.kind !== b.kind) {
          const [t, r] = a.kind === "text" ? [a, b] : [b, a];
          if (!inside(t, r)) problems.push(`text "${t.text}" sticks out of its box ${t.owner}`);
        } else if (overlap(a, b)) {
          problems.push(`${a.kind} "${a.text}" (${a.owner}) overlaps ${b.kind} "${b.text}" (${b.owner})`);
        }
      }
    }
    return { items: items.length, problems };
  });
  report.measured = geometry.items;
  for (const p of geometry.problems) failures.push(`with the real font: ${p}`);

  if (args.search) {
    await page.fill("#search", args.search);
    const matched = await page.$$eval("g.node.match", (gs) => gs.map((g) => g.getAttribute("data-name")));
    check(matched.includes(args.search), `searching ${args.search} did not highlight it (matched: ${matched})`);
    check(matched.every((m) => m.includes(args.search)), `searching ${args.search} highlighted ${matched}`);
    const dimmed = await page.$eval("#view svg", (s) => s.classList.contains("searching"));
    check(dimmed, "the rest is not dimmed while searching");
    const text = await page.textContent("#matches");
    check(/\d+ match/.test(text), `the match count says "${text}"`);
    report.search = matched;
    await page.fill("#search", "");
  }

  if (args.service) {
    await page.click(`g.node[data-name="${args.service}"]`);
    const panel = await page.textContent("#panel");
    check(panel.includes(args.service), "the panel does not name the service");
    check(panel.includes("Permissions"), "the panel shows no permissions");
    check(/publish to |consume subscription /.test(panel), "the panel lists no grant");
    const locations = await page.$$eval("#panel .loc", (ls) => ls.map((l) => l.textContent));
    const prefix = args.location;
    check(
      locations.some((l) => l.startsWith(prefix) && /:\d+:\d+$/.test(l)),
      `no location like ${prefix}…:line:column in the panel (${locations})`,
    );
    report.servicePanel = locations.length;
  }

  if (args.search) {
    // The topic's panel shows its message schema as a tree: fields indented under the type.
    await page.click(`g.node[data-name="${args.search}"]`);
    const panel = await page.textContent("#panel");
    check(panel.includes("Message schema"), "the topic panel shows no message schema");
    const tree = await page.$$eval("#panel li.tree", (ls) => ls.map((l) => ({ text: l.textContent, indent: parseFloat(l.style.marginLeft) || 0 })));
    check(tree.length >= 2, `the message schema tree has ${tree.length} lines`);
    check(tree.some((l) => l.indent > 0 && /^[\w$]+\??: /.test(l.text)), `no indented field line in the schema tree (${JSON.stringify(tree.slice(0, 4))})`);
    report.schemaTree = tree.length;
  }

  const sub = page.locator("g.edge.subscribe text.label").first();
  if ((await sub.count()) > 0) {
    await sub.click();
    const panel = await page.textContent("#panel");
    for (const want of ["Retry policy", "max retries", "Filter", "Dead-letter queue", "ack deadline"]) {
      check(panel.includes(want), `the subscription panel lacks "${want}"`);
    }
  }

  // Zoom with the wheel, pan by dragging.
  const viewBox = () => page.$eval("#view svg", (s) => s.getAttribute("viewBox"));
  const before = await viewBox();
  await page.mouse.move(700, 400);
  await page.mouse.wheel(0, -400);
  const zoomed = await viewBox();
  check(zoomed !== before, "scrolling did not zoom");
  await page.mouse.move(700, 400);
  await page.mouse.down();
  await page.mouse.move(600, 350, { steps: 5 });
  await page.mouse.up();
  check((await viewBox()) !== zoomed, "dragging did not pan");
  await page.click("#fit");

  if (args.service) {
    await page.click(`g.node[data-name="${args.service}"]`);
  }
  if (args.screenshot) {
    // At 1:1 from the top left, so the picture is readable.
    await page.setViewportSize({ width: 1400, height: 420 });
    await page.$eval("#view svg", (svg) => {
      const r = svg.getBoundingClientRect();
      svg.setAttribute("viewBox", `0 0 ${r.width} ${r.height}`);
    });
    await page.screenshot({ path: args.screenshot });
  }
  for (const e of errors) failures.push(`console ${e}`);
  for (const r of requests) failures.push(`the page requested ${r}`);
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(report) + "\n");
if (failures.length) {
  process.stderr.write(failures.join("\n") + "\n");
  process.exit(1);
}

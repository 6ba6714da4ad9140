// Validates AsyncAPI documents with the official parser (@asyncapi/parser): every file given
// must parse with zero errors and zero warnings. Usage:
//   node check-asyncapi.mjs --parser DIR/node_modules/@asyncapi/parser FILE...
// Prints each finding (severity, path, message) and exits 1 if there is any.
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import path from "node:path";

const args = process.argv.slice(2);
const at = args.indexOf("--parser");
if (at < 0 || !args[at + 1]) {
  console.error("usage: check-asyncapi.mjs --parser PATH FILE...");
  process.exit(2);
}
const parserDir = args[at + 1];
const files = args.filter((_, i) => i !== at && i !== at + 1);
const entry = path.join(parserDir, "cjs", "index.js");
const mod = await import(pathToFileURL(entry).href);
const Parser = mod.Parser ?? mod.default?.Parser;
const parser = new Parser();
const names = ["error", "warning", "info", "hint"];
let bad = 0;
for (const file of files) {
  const text = readFileSync(file, "utf8");
  const { document, diagnostics } = await parser.parse(text, { source: file });
  const serious = diagnostics.filter((d) => d.severity <= 1);
  for (const d of diagnostics) {
    console.log(`${file}: ${names[d.severity] ?? d.severity} ${d.code} at /${(d.path ?? []).join("/")}: ${d.message}`);
  }
  if (serious.length > 0 || !document) {
    bad += 1;
    if (!document) console.log(`${file}: the parser returned no document`);
  } else {
    console.log(`${file}: ok (${document.channels().length} channels, ${document.operations().length} operations)`);
  }
}
process.exit(bad > 0 ? 1 : 0);

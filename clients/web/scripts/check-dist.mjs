#!/usr/bin/env node
// Rebuilds the UI into a temporary directory and compares it byte for byte
// with the checked-in dist/. Exits 1 (listing the files) when they differ:
// run `npm run build` and commit the result. The build is deterministic (fixed
// file names, no timestamps), so identical sources give identical files.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const pkg = join(dirname(fileURLToPath(import.meta.url)), "..");
const checkedIn = join(pkg, "dist");
const tmp = mkdtempSync(join(tmpdir(), "roleplay-web-dist-"));

function listFiles(root) {
  const out = [];
  const walk = (dir) => {
    let entries;
    try {
      entries = readdirSync(dir);
    } catch {
      return;
    }
    for (const name of entries) {
      const full = join(dir, name);
      if (statSync(full).isDirectory()) walk(full);
      else out.push(relative(root, full));
    }
  };
  walk(root);
  return out.sort();
}

let status = 0;
try {
  const env = { ...process.env, PATH: join(pkg, "node_modules", ".bin") + delimiter + (process.env.PATH ?? "") };
  const run = spawnSync("vite", ["build", "--logLevel", "warn", "--outDir", tmp, "--emptyOutDir"], { cwd: pkg, env, stdio: "inherit" });
  if (run.error || run.status !== 0) {
    console.error(`check-dist: 'vite build' failed${run.error ? `: ${run.error.message}` : ` (exit ${run.status})`}`);
    process.exit(2);
  }
  const want = listFiles(tmp);
  const have = listFiles(checkedIn);
  const problems = [];
  for (const f of want) {
    if (!have.includes(f)) problems.push(`missing from dist: ${f}`);
    else if (!readFileSync(join(tmp, f)).equals(readFileSync(join(checkedIn, f)))) problems.push(`out of date: dist/${f}`);
  }
  for (const f of have) if (!want.includes(f)) problems.push(`not built from the sources: dist/${f}`);
  // The page is served with a strict CSP: no inline script or style in it.
  const html = readFileSync(join(tmp, "index.html"), "utf8");
  if (/<script(?![^>]*\bsrc=)[^>]*>/i.test(html)) problems.push("index.html has an inline <script>");
  if (/<style[\s>]/i.test(html) || /\sstyle=/i.test(html)) problems.push("index.html has an inline style");
  if (problems.length > 0) {
    console.error("check-dist: dist differs from what the sources build:");
    for (const p of problems) console.error(`  ${p}`);
    console.error("Run `npm run build` and commit the result.");
    status = 1;
  } else {
    console.log(`check-dist: dist is up to date (${want.length} files)`);
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
process.exit(status);

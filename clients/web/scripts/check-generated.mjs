#!/usr/bin/env node
// Regenerates the code from ../../proto into a temporary directory and
// compares it with the checked-in src/gen/. Exits 1 (listing the files) when
// they differ: run `npm run generate` and commit the result.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const pkg = join(dirname(fileURLToPath(import.meta.url)), "..");
const checkedIn = join(pkg, "src", "gen");
const tmp = mkdtempSync(join(tmpdir(), "roleplay-web-gen-"));

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
  // node_modules/.bin holds buf and protoc-gen-es (npm scripts add it to PATH
  // themselves; this makes `node scripts/check-generated.mjs` work too).
  const env = { ...process.env, PATH: join(pkg, "node_modules", ".bin") + delimiter + (process.env.PATH ?? "") };
  const run = spawnSync("buf", ["generate", "--output", tmp], { cwd: pkg, env, stdio: "inherit" });
  if (run.error || run.status !== 0) {
    console.error(`check-generated: 'buf generate' failed${run.error ? `: ${run.error.message}` : ` (exit ${run.status})`}`);
    process.exit(2);
  }
  const fresh = join(tmp, "src", "gen");
  const want = listFiles(fresh);
  const have = listFiles(checkedIn);
  const problems = [];
  for (const f of want) {
    if (!have.includes(f)) problems.push(`missing from src/gen: ${f}`);
    else if (!readFileSync(join(fresh, f)).equals(readFileSync(join(checkedIn, f)))) problems.push(`out of date: src/gen/${f}`);
  }
  for (const f of have) if (!want.includes(f)) problems.push(`not generated from the protos: src/gen/${f}`);
  if (problems.length > 0) {
    console.error("check-generated: src/gen differs from what ../../proto generates:");
    for (const p of problems) console.error(`  ${p}`);
    console.error("Run `npm run generate` and commit the result.");
    status = 1;
  } else {
    console.log(`check-generated: src/gen is up to date (${want.length} files)`);
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
process.exit(status);

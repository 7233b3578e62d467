// The site's assets after the WASM builds: content-hashed names, brotli and gzip copies,
// the service worker stamped with this build, and the sizes of every bundle.
//
//   node scripts/site-assets.mjs build SITE   names, compresses, stamps; writes
//                                             SITE/assets.json and SITE/sizes.json
//   node scripts/site-assets.mjs sizes SITE   prints the sizes of every bundle
//   node scripts/site-assets.mjs check SITE   prints them; fails when the field bundle
//                                             is over its brotli budget
//
// Compression is Node's own zlib (brotli quality 11, gzip level 9). Sizes are
// deterministic for a given build, so the budget is a plain comparison.
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync, renameSync, readdirSync, statSync } from 'node:fs';
import { join, extname, basename } from 'node:path';
import { brotliCompressSync, gzipSync, constants } from 'node:zlib';

// Bytes the phone downloads for the field pages' code and style, brotli-compressed: the
// field bundle's JS and WASM and the stylesheet. The goal is 450 KB; until the bundle gets
// there, the budget holds it at its present size so it cannot grow unnoticed. Lower it
// with every cut; raise it only for a capability the phone must carry, by what that
// capability measured, and say so in the commit.
const FIELD_BUDGET_BROTLI = 633_000;
const COMPRESSIBLE = new Set(['.js', '.wasm', '.css', '.json', '.webmanifest', '.svg', '.html']);

const [mode, site] = process.argv.slice(2);
if (!site || !['build', 'sizes', 'check'].includes(mode)) {
  console.error('usage: node scripts/site-assets.mjs build|sizes|check SITE');
  process.exit(2);
}
const pkg = join(site, 'pkg');

const hash = (bytes) => createHash('sha256').update(bytes).digest('hex').slice(0, 16);
const brotli = (bytes) => brotliCompressSync(bytes, {
  params: {
    [constants.BROTLI_PARAM_QUALITY]: 11,
    [constants.BROTLI_PARAM_SIZE_HINT]: bytes.length,
    [constants.BROTLI_PARAM_MODE]: constants.BROTLI_MODE_GENERIC,
  },
});
const gzip = (bytes) => gzipSync(bytes, { level: 9 });

function hashed(name) {
  // field.js -> field-<hash>.js; field_bg.wasm -> field_bg-<hash>.wasm
  const path = join(pkg, name);
  const ext = extname(name);
  const renamed = `${basename(name, ext)}-${hash(readFileSync(path))}${ext}`;
  renameSync(path, join(pkg, renamed));
  return renamed;
}

function files(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : [path];
  });
}

function sizes(assets) {
  const of = (name) => {
    const path = join(pkg, name);
    return {
      raw: statSync(path).size,
      gzip: statSync(`${path}.gz`).size,
      brotli: statSync(`${path}.br`).size,
    };
  };
  const bundle = (b) => ({ js: of(b.js), wasm: of(b.wasm), css: of(assets.css) });
  return { field: bundle(assets.field), desk: bundle(assets.desk) };
}

function total(bundle, kind) {
  return bundle.js[kind] + bundle.wasm[kind] + bundle.css[kind];
}

function print(all) {
  const kb = (n) => `${(n / 1000).toFixed(1)} KB`.padStart(11);
  console.log('bundle  file        raw        gzip      brotli');
  for (const [name, bundle] of Object.entries(all)) {
    for (const part of ['js', 'wasm', 'css']) {
      const s = bundle[part];
      console.log(`${name.padEnd(7)} ${part.padEnd(5)}${kb(s.raw)} ${kb(s.gzip)} ${kb(s.brotli)}`);
    }
    console.log(`${name.padEnd(7)} total${kb(total(bundle, 'raw'))} ${kb(total(bundle, 'gzip'))} ${kb(total(bundle, 'brotli'))}`);
  }
}

if (mode === 'build') {
  const assets = {
    css: hashed('muster.css'),
    field: { js: hashed('field.js'), wasm: hashed('field_bg.wasm') },
    desk: { js: hashed('desk.js'), wasm: hashed('desk_bg.wasm') },
  };
  const build = hash(JSON.stringify(assets));
  // What the service worker keeps for offline use: the field pages' code and style and
  // the install files. The desk pages need the network.
  const precache = [
    `/pkg/${assets.css}`, `/pkg/${assets.field.js}`, `/pkg/${assets.field.wasm}`,
    '/manifest.webmanifest', '/icons/icon-192.png', '/icons/icon-512.png',
    '/icons/icon-maskable-512.png',
  ];
  const sw = join(site, 'sw.js');
  writeFileSync(sw, readFileSync(sw, 'utf8')
    .replace('__MUSTER_BUILD__', build)
    .replace("['__MUSTER_PRECACHE__']", JSON.stringify(precache)));
  writeFileSync(join(site, 'assets.json'), `${JSON.stringify(assets, null, 2)}\n`);
  for (const path of files(site)) {
    if (!COMPRESSIBLE.has(extname(path))) continue;
    const bytes = readFileSync(path);
    writeFileSync(`${path}.br`, brotli(bytes));
    writeFileSync(`${path}.gz`, gzip(bytes));
  }
  const all = sizes(assets);
  writeFileSync(join(site, 'sizes.json'), `${JSON.stringify(all, null, 2)}\n`);
  print(all);
  console.log(`build ${build}`);
} else {
  const all = JSON.parse(readFileSync(join(site, 'sizes.json'), 'utf8'));
  print(all);
  if (mode === 'sizes') process.exit(0);
  const field = total(all.field, 'brotli');
  if (field > FIELD_BUDGET_BROTLI) {
    console.error(`the field bundle is ${field} B brotli, over its budget of ${FIELD_BUDGET_BROTLI} B`);
    process.exit(1);
  }
  console.log(`the field bundle is ${field} B brotli, within its budget of ${FIELD_BUDGET_BROTLI} B`);
}

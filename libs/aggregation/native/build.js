#!/usr/bin/env node
/*
 * Builds the native fold (fold.cc) into dist/native/fold.node with the
 * machine's C++ compiler and Node's own headers; run by `npm run build` and
 * `npm test`. Nothing is downloaded.
 *
 * Without a C++ compiler (CXX, else g++, else c++) it says so and stops
 * without error: the aggregation then runs its WebAssembly kernels, with the
 * same results, slower. A compiler that is there but fails is an error.
 * FL_NATIVE_FOLD=off skips the build.
 */
'use strict';
const { spawnSync } = require('node:child_process');
const { existsSync, mkdirSync, renameSync } = require('node:fs');
const { dirname, join, resolve } = require('node:path');

const root = resolve(__dirname, '..', '..', '..');
const source = join(__dirname, 'fold.cc');
const target = join(root, 'dist', 'native', 'fold.node');

/** Whether this machine can build the addon: { compiler, headers } or { reason } (FL_NATIVE_FOLD=off, no compiler, no headers). */
function toolchain() {
  if (process.env.FL_NATIVE_FOLD === 'off') return { reason: 'FL_NATIVE_FOLD=off' };
  if (process.platform !== 'linux' && process.platform !== 'darwin') return { reason: `built on Linux and macOS only, not ${process.platform}` };
  const compiler = [process.env.CXX, 'g++', 'c++'].find((c) => c && spawnSync(c, ['--version'], { stdio: 'ignore' }).status === 0);
  if (!compiler) return { reason: 'no C++ compiler found (set CXX, or install g++)' };
  const headers = [process.env.FL_NODE_HEADERS, join(dirname(process.execPath), '..', 'include', 'node'), '/usr/include/node'].find(
    (d) => d && existsSync(join(d, 'node_api.h')),
  );
  if (!headers) return { reason: `Node's headers (node_api.h) not found beside ${process.execPath} nor in /usr/include/node (set FL_NODE_HEADERS)` };
  return { compiler, headers };
}

function main() {
  const { compiler, headers, reason } = toolchain();
  if (reason) {
    console.warn(`native fold: not built: ${reason}; aggregation will use its WebAssembly kernels`);
    return 0;
  }
  mkdirSync(dirname(target), { recursive: true });
  const partial = `${target}.${process.pid}.tmp`;
  const args = [
    '-O2', '-std=c++17', '-shared', '-fPIC', '-fvisibility=hidden',
    // IEEE float32 as written: no fused multiply-add, no reassociation (the other engines' bits).
    '-ffp-contract=off', '-fno-fast-math',
    '-DNODE_GYP_MODULE_NAME=fold', '-DNAPI_VERSION=8',
    `-I${headers}`, source, '-o', partial,
    // Node-API's symbols come from the node binary that loads the addon.
    ...(process.platform === 'darwin' ? ['-undefined', 'dynamic_lookup'] : []),
  ];
  const run = spawnSync(compiler, args, { stdio: 'inherit' });
  if (run.status !== 0) {
    console.error(`native fold: ${compiler} ${args.join(' ')} failed`);
    return 1;
  }
  renameSync(partial, target); // a running process never loads a half-written file
  return 0;
}

module.exports = { toolchain };
if (require.main === module) process.exit(main());

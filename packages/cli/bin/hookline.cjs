#!/usr/bin/env node
'use strict';
// The `hookline` command. Installed from `npm pack`, it runs the compiled dist/;
// in a clone before `npm run build`, it runs src/ through tsx (a devDependency).
const { existsSync } = require('node:fs');
const { join } = require('node:path');

const built = join(__dirname, '..', 'dist', 'main.js');
let main;
if (existsSync(built)) {
  main = require(built);
} else {
  require('tsx/cjs');
  main = require(join(__dirname, '..', 'src', 'main.ts'));
}
const io = { out: (line) => process.stdout.write(`${line}\n`), err: (line) => process.stderr.write(`${line}\n`), env: process.env };
main.run(process.argv.slice(2), io).then((code) => {
  process.exitCode = code;
  // Nothing is left to wait for once the command has answered.
  setImmediate(() => process.exit(code));
});

#!/usr/bin/env node
"use strict";
const path = require("node:path");
const fs = require("node:fs");
const cli = path.join(__dirname, "..", "out", "cli.js");
if (!fs.existsSync(cli)) {
  process.stderr.write(`ptq: ${cli} is missing. Run "npm run build" in ${path.dirname(__dirname)} first.\n`);
  process.exit(2);
}
require(cli);

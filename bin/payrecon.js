#!/usr/bin/env node
// The `payrecon` command: runs the TypeScript CLI (src/cli/main.ts) through tsx's CommonJS loader.
'use strict';

require('tsx/cjs');
require('../src/cli/main.ts').main();

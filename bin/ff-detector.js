#!/usr/bin/env node
// The installed CLI: runs the compiled entry point (built by `npm ci` through the prepare script).
import '../dist/src/cli/main.js';

#!/usr/bin/env node
// The installed `latchkey` command: the compiled CLI (a file that exists before the build, so npm links it).
import '../dist/main.js';

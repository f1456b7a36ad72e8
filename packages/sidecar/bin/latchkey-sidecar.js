#!/usr/bin/env node
// The installed `latchkey-sidecar` command: the compiled sidecar (a file that exists before the build, so npm links it).
import '../dist/main.js';

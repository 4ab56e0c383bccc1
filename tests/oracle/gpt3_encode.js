// Encodes a UTF-8 text file with the npm `gpt-3-encoder` package (the reference for GPT-2 BPE) and prints
// {"ids": [...]}. Usage: node gpt3_encode.js NODE_MODULES_DIR TEXT_FILE
//
// The package's encode() grows its output with Array.concat per pre-token, which is quadratic in the text length,
// so the text is cut into chunks of a few KB at positions where GPT-2's regex always starts a new match: a space
// preceded by a non-whitespace character. No alternative of the pattern matches a non-space followed by a space
// ( ?\p{L}+ etc. only take a space at their start, \s+ only whitespace), and the pattern has no look-behind, so
// encoding the chunks one by one yields exactly the ids of encoding the whole text.
const fs = require('fs');
const path = require('path');
const { encode } = require(path.join(process.argv[2], 'gpt-3-encoder'));
const text = fs.readFileSync(process.argv[3], 'utf-8');
const CHUNK = 4096;
const ids = [];
let start = 0;
while (start < text.length) {
  let cut = Math.min(text.length, start + CHUNK);
  while (cut < text.length && !(text[cut] === ' ' && !/\s/u.test(text[cut - 1]))) cut++;
  for (const id of encode(text.slice(start, cut))) ids.push(id);
  start = cut;
}
process.stdout.write(JSON.stringify({ ids }) + '\n');

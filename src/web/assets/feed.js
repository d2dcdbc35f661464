// potluck's feed library for the browser: a guest with no install keeps
// an Ed25519 key in this browser (WebCrypto, IndexedDB) and signs their
// `about` and `rsvp` messages in the feed format of docs/protocol.md, so
// that any node validates them like its own. docs/browser-keys.md says
// what it keeps, what it signs and how the key is exported.
//
// A classic script (served like live.js, no build step, no dependency)
// that defines one global, `potluckFeed`. A browser too old to parse it
// (no async functions) leaves `potluckFeed` undefined: pages treat that
// as "not supported", as they do `await potluckFeed.supported() === false`.
(function () {
  'use strict';

  // ---------------------------------------------------------------------
  // BLAKE3 (default hash, 32-byte output), written for this file from the
  // BLAKE3 specification and its reference implementation's structure
  // (github.com/BLAKE3-team/BLAKE3, reference_impl.rs, CC0/Apache-2.0).
  // Inputs here are small (a header, a few KB of content), so it is the
  // plain one-shot algorithm: no SIMD, no streaming. Checked in Chromium
  // against the official test vectors by tests/browser_sign.rs.

  var IV = new Uint32Array([
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
    0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19
  ]);
  var CHUNK_START = 1, CHUNK_END = 2, PARENT = 4, ROOT = 8;
  var CHUNK_LEN = 1024, BLOCK_LEN = 64;

  // The message word order of each of the 7 rounds: the spec permutes
  // the words between rounds; precomputing the composed orders is the same.
  var SCHEDULE = (function () {
    var perm = [2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8];
    var order = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];
    var rounds = [];
    for (var r = 0; r < 7; r++) {
      rounds.push(order);
      order = perm.map(function (i) { return order[i]; });
    }
    return rounds;
  })();

  // Scratch state, reused: stores into a Uint32Array wrap modulo 2^32,
  // which is exactly the spec's addition.
  var v = new Uint32Array(16);
  var block = new Uint8Array(BLOCK_LEN);
  var blockView = new DataView(block.buffer);

  function rotr(x, n) { return (x >>> n) | (x << (32 - n)); }

  function g(a, b, c, d, x, y) {
    v[a] = v[a] + v[b] + x; v[d] = rotr(v[d] ^ v[a], 16);
    v[c] = v[c] + v[d]; v[b] = rotr(v[b] ^ v[c], 12);
    v[a] = v[a] + v[b] + y; v[d] = rotr(v[d] ^ v[a], 8);
    v[c] = v[c] + v[d]; v[b] = rotr(v[b] ^ v[c], 7);
  }

  // The compression function; leaves the 16 output words in `v`.
  function compress(cv, m, counter, len, flags) {
    v.set(cv, 0);
    v[8] = IV[0]; v[9] = IV[1]; v[10] = IV[2]; v[11] = IV[3];
    v[12] = counter % 0x100000000;
    v[13] = Math.floor(counter / 0x100000000);
    v[14] = len;
    v[15] = flags;
    for (var r = 0; r < 7; r++) {
      var s = SCHEDULE[r];
      g(0, 4, 8, 12, m[s[0]], m[s[1]]);
      g(1, 5, 9, 13, m[s[2]], m[s[3]]);
      g(2, 6, 10, 14, m[s[4]], m[s[5]]);
      g(3, 7, 11, 15, m[s[6]], m[s[7]]);
      g(0, 5, 10, 15, m[s[8]], m[s[9]]);
      g(1, 6, 11, 12, m[s[10]], m[s[11]]);
      g(2, 7, 8, 13, m[s[12]], m[s[13]]);
      g(3, 4, 9, 14, m[s[14]], m[s[15]]);
    }
    for (var i = 0; i < 8; i++) {
      v[i] ^= v[i + 8];
      v[i + 8] ^= cv[i];
    }
  }

  // One block of `input` as 16 little-endian words, zero-padded.
  function loadBlock(input, offset, len) {
    block.fill(0);
    block.set(input.subarray(offset, offset + len));
    var m = new Uint32Array(16);
    for (var i = 0; i < 16; i++) { m[i] = blockView.getUint32(4 * i, true); }
    return m;
  }

  // What is needed to finish a node: its last compression's inputs. The
  // root flag is only known at the end, so the last compression waits.
  function node(cv, m, counter, len, flags) {
    return { cv: cv, m: m, counter: counter, len: len, flags: flags };
  }

  function chainingValue(n) {
    compress(n.cv, n.m, n.counter, n.len, n.flags);
    return v.slice(0, 8);
  }

  function chunk(input, start, end, counter) {
    var cv = IV;
    var blocks = Math.max(1, Math.ceil((end - start) / BLOCK_LEN));
    for (var b = 0; ; b++) {
      var offset = start + b * BLOCK_LEN;
      var len = Math.min(BLOCK_LEN, end - offset);
      var flags = (b === 0 ? CHUNK_START : 0) | (b === blocks - 1 ? CHUNK_END : 0);
      var n = node(cv, loadBlock(input, offset, len), counter, len, flags);
      if (b === blocks - 1) { return n; }
      cv = chainingValue(n);
    }
  }

  function parent(left, right) {
    var m = new Uint32Array(16);
    m.set(left, 0);
    m.set(right, 8);
    return node(IV, m, 0, BLOCK_LEN, PARENT);
  }

  function blake3(data) {
    var input = bytes(data);
    var chunks = Math.max(1, Math.ceil(input.length / CHUNK_LEN));
    // The chaining values of complete subtrees, left to right: after
    // chunk c the stack holds one per 1 bit of c + 1 (the reference's
    // "lazy merge"), so the last chunk is never merged before the end.
    var stack = [];
    for (var c = 0; c < chunks - 1; c++) {
      var cv = chainingValue(chunk(input, c * CHUNK_LEN, (c + 1) * CHUNK_LEN, c));
      for (var total = c + 1; total % 2 === 0; total /= 2) {
        cv = chainingValue(parent(stack.pop(), cv));
      }
      stack.push(cv);
    }
    var n = chunk(input, (chunks - 1) * CHUNK_LEN, input.length, chunks - 1);
    while (stack.length) { n = parent(stack.pop(), chainingValue(n)); }
    // The root's first output block (counter 0) holds the 32 bytes.
    compress(n.cv, n.m, 0, n.len, n.flags | ROOT);
    var out = new Uint8Array(32);
    var view = new DataView(out.buffer);
    for (var i = 0; i < 8; i++) { view.setUint32(4 * i, v[i], true); }
    return out;
  }

  // ---------------------------------------------------------------------
  // Bytes and text forms (docs/protocol.md, "Text forms").

  var utf8 = new TextEncoder();

  // Bytes from a Uint8Array, an ArrayBuffer or a string (UTF-8).
  function bytes(data) {
    if (data instanceof Uint8Array) { return data; }
    if (data instanceof ArrayBuffer) { return new Uint8Array(data); }
    if (typeof data === 'string') { return utf8.encode(wellFormed(data, 'text')); }
    throw new TypeError('expected bytes or a string');
  }

  function concat() {
    var parts = Array.prototype.map.call(arguments, bytes);
    var out = new Uint8Array(parts.reduce(function (n, p) { return n + p.length; }, 0));
    var at = 0;
    parts.forEach(function (p) { out.set(p, at); at += p.length; });
    return out;
  }

  function equal(a, b) {
    return a.length === b.length && a.every(function (x, i) { return x === b[i]; });
  }

  // Standard base64 (RFC 4648 §4) with padding, never the URL-safe one.
  function base64(data) {
    var b = bytes(data), s = '';
    for (var i = 0; i < b.length; i++) { s += String.fromCharCode(b[i]); }
    return btoa(s);
  }

  // Decodes exactly what `base64` writes, nothing else: as the nodes do,
  // text with missing padding, other characters or non-zero unused bits
  // is refused (atob alone would accept some of these).
  function fromBase64(text) {
    if (typeof text !== 'string' || text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) {
      throw new Error('not standard padded base64');
    }
    var s = atob(text), out = new Uint8Array(s.length);
    for (var i = 0; i < s.length; i++) { out[i] = s.charCodeAt(i); }
    if (base64(out) !== text) { throw new Error('not canonical base64'); }
    return out;
  }

  // The unpadded base64url of JWK fields (RFC 7515 §2).
  function fromBase64Url(text) {
    var std = String(text).replace(/-/g, '+').replace(/_/g, '/');
    return fromBase64(std + '==='.slice(0, (4 - std.length % 4) % 4));
  }

  function feedIdText(key) { return '@' + base64(key) + '.ed25519'; }
  function messageIdText(id) { return '%' + base64(id) + '.blake3'; }

  // `%<base64 of 32 bytes>.blake3`, strictly (whitespace around the whole
  // is ignored, as the nodes ignore it in what people type).
  function parseMessageId(text) {
    var t = String(text).trim();
    var body = t.slice(1, -'.blake3'.length);
    if (t[0] !== '%' || !t.endsWith('.blake3') || body.length !== 44) {
      throw new Error('expected a message id like %<base64 of 32 bytes>.blake3');
    }
    return fromBase64(body);
  }

  // ---------------------------------------------------------------------
  // Messages (docs/protocol.md, "Encoding", "Signing", "Message id").

  var HEADER_LEN = 117;
  var MAX_CONTENT_LEN = 16384;
  var DOMAIN = utf8.encode('potluck-message-v1:');
  var ZERO_ID = new Uint8Array(32);

  function exactly32(b, what) {
    b = bytes(b);
    if (b.length !== 32) { throw new Error(what + ' must be 32 bytes'); }
    return b;
  }

  // The 117-byte header: version 1, author, sequence (u64 BE), previous
  // (32 zero bytes for the first message), timestamp (i64 BE, ms),
  // content length (u32 BE), BLAKE3 of the content.
  function encodeHeader(h) {
    var content = bytes(h.content);
    if (!Number.isSafeInteger(h.sequence) || h.sequence < 1) {
      throw new Error('the sequence must be a whole number from 1');
    }
    if (!Number.isSafeInteger(h.timestamp)) {
      throw new Error('the timestamp must be whole milliseconds');
    }
    if (content.length > MAX_CONTENT_LEN) {
      throw new Error('content is ' + content.length + ' bytes; the limit is ' + MAX_CONTENT_LEN);
    }
    var header = new Uint8Array(HEADER_LEN);
    var view = new DataView(header.buffer);
    header[0] = 1;
    header.set(exactly32(h.author, 'the author'), 1);
    view.setBigUint64(33, BigInt(h.sequence));
    header.set(h.previous ? exactly32(h.previous, 'previous') : ZERO_ID, 41);
    view.setBigInt64(73, BigInt(h.timestamp));
    view.setUint32(81, content.length);
    header.set(blake3(content), 85);
    return header;
  }

  function signingInput(header) { return concat(DOMAIN, header); }

  // The id covers header and signature, never the content.
  function messageId(header, signature) { return blake3(concat(header, signature)); }

  // Signs one message with `key` ({privateKey, author}). `previous` must
  // be the id of message `sequence - 1` (null for the first): signing out
  // of order makes a message every node refuses.
  async function signMessage(key, m) {
    var content = bytes(m.content);
    var header = encodeHeader({
      author: key.author, sequence: m.sequence, previous: m.previous,
      timestamp: m.timestamp, content: content
    });
    var signature = new Uint8Array(await crypto.subtle.sign(ED25519, key.privateKey, signingInput(header)));
    var id = messageId(header, signature);
    return {
      sequence: m.sequence,
      id: id,
      idText: messageIdText(id),
      header: header,
      signature: signature,
      bytes: concat(header, signature, content)
    };
  }

  // ---------------------------------------------------------------------
  // Content (docs/content.md): the exact compact JSON the Rust side
  // writes, `"type"` first, fields in its order. JSON.stringify escapes a
  // well-formed string exactly as serde_json does (`"`, `\`, \b \t \n \f
  // \r, other controls as lowercase \u00xx, nothing else), so the bytes
  // are the ones a node would publish for the same values.

  // Unicode's White_Space, which Rust's `trim` uses (JavaScript's \s
  // differs: it has U+FEFF and lacks U+0085).
  var ONLY_SPACE = /^[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$/;

  // A lone surrogate cannot be UTF-8: TextEncoder would silently turn it
  // into U+FFFD, and an escaped one makes content every node refuses.
  function wellFormed(text, field) {
    if (typeof text !== 'string') { throw new Error('`' + field + '` must be a string'); }
    if (/[\ud800-\udbff](?![\udc00-\udfff])|(?:^|[^\ud800-\udbff])[\udc00-\udfff]/.test(text)) {
      throw new Error('`' + field + '` is not valid Unicode text');
    }
    return text;
  }

  // At most `max` characters (Unicode scalar values, as the Rust side counts).
  function limited(text, field, max) {
    var chars = Array.from(wellFormed(text, field)).length;
    if (chars > max) {
      throw new Error('`' + field + '` is ' + chars + ' characters long; the limit is ' + max);
    }
    return text;
  }

  function wholeNumber(n, field, min, max) {
    if (!Number.isInteger(n) || n < min || n > max) {
      throw new Error('`' + field + '` must be a whole number from ' + min + ' to ' + max);
    }
    return String(n);
  }

  function json(type, fields) {
    var out = '{"type":' + JSON.stringify(type);
    fields.forEach(function (f) { out += ',' + JSON.stringify(f[0]) + ':' + f[1]; });
    return utf8.encode(out + '}');
  }

  function present(x) { return x !== undefined && x !== null; }

  // {"type":"about","name":…[,"description":…]}: a name of 1 to 100
  // characters, not only white space; a description of at most 1000.
  function about(name, description) {
    var fields = [['name', JSON.stringify(limited(name, 'name', 100))]];
    if (ONLY_SPACE.test(name)) { throw new Error('`name` is empty'); }
    if (present(description)) {
      fields.push(['description', JSON.stringify(limited(description, 'description', 1000))]);
    }
    return json('about', fields);
  }

  // {"type":"rsvp","event":…,"status":…,"guests":N[,"note":…][,"revision":N]}:
  // `guests` is always written (0 to 20), as the Rust side does.
  function rsvp(answer) {
    var event = messageIdText(parseMessageId(answer.event));
    if (['going', 'maybe', 'not-going'].indexOf(answer.status) < 0) {
      throw new Error('`status` must be "going", "maybe" or "not-going"');
    }
    var fields = [
      ['event', JSON.stringify(event)],
      ['status', JSON.stringify(answer.status)],
      ['guests', wholeNumber(present(answer.guests) ? answer.guests : 0, 'guests', 0, 20)]
    ];
    if (present(answer.note)) { fields.push(['note', JSON.stringify(limited(answer.note, 'note', 500))]); }
    if (present(answer.revision)) {
      fields.push(['revision', wholeNumber(answer.revision, 'revision', 0, 4294967295)]);
    }
    return json('rsvp', fields);
  }

  // What publishing checks of content made elsewhere: JSON, an object,
  // a string `type`, at most 16 KiB. A message a node refuses would stop
  // this feed for good (the next one chains onto it), so only content
  // built by `about` and `rsvp` (which satisfy every rule of
  // docs/protocol.md "Content") should be published; this catches gross
  // mistakes, not duplicate keys or deep nesting.
  function checkContent(content) {
    var parsed;
    if (content.length > MAX_CONTENT_LEN) { throw new Error('content over 16384 bytes'); }
    try {
      parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(content));
    } catch (e) {
      throw new Error('content is not UTF-8 JSON');
    }
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed) || typeof parsed.type !== 'string') {
      throw new Error('content must be a JSON object with a string "type"');
    }
  }

  // ---------------------------------------------------------------------
  // Ed25519 keys through WebCrypto.

  var ED25519 = { name: 'Ed25519' };

  // Whether this browser can keep a key and sign: a secure context
  // (https, or http on loopback), IndexedDB, and Ed25519 in WebCrypto
  // (Chromium 137+, Firefox 129+, Safari 17+). Tries it, since the only
  // reliable test of an algorithm is to use it.
  async function supported() {
    try {
      if (!window.isSecureContext || !window.indexedDB || !window.crypto || !crypto.subtle) {
        return false;
      }
      var keys = await crypto.subtle.generateKey(ED25519, false, ['sign', 'verify']);
      var signature = await crypto.subtle.sign(ED25519, keys.privateKey, new Uint8Array(1));
      return signature.byteLength === 64;
    } catch (e) {
      return false;
    }
  }

  // RFC 8410's PKCS #8 wrapping of a raw Ed25519 seed: this 16-byte
  // prefix, then the 32 bytes.
  var PKCS8_PREFIX = new Uint8Array([
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20
  ]);

  // A key ({privateKey, author}) from a 32-byte RFC 8032 seed, for the
  // test vectors and for turning a recovery code into a key file. Not
  // for signing in this browser's feed: see docs/browser-keys.md (forks).
  async function keyFromSeed(seed) {
    var privateKey = await crypto.subtle.importKey(
      'pkcs8', concat(PKCS8_PREFIX, exactly32(seed, 'the seed')), ED25519, true, ['sign']);
    var jwk = await crypto.subtle.exportKey('jwk', privateKey);
    return { privateKey: privateKey, author: exactly32(fromBase64Url(jwk.x), 'the public key') };
  }

  // The seed and public key of an extractable private key, from its JWK
  // (`d` is the RFC 8032 seed, `x` the public key, both base64url).
  async function seedOf(key) {
    var jwk = await crypto.subtle.exportKey('jwk', key.privateKey);
    var seed = exactly32(fromBase64Url(jwk.d), 'the seed');
    if (!equal(fromBase64Url(jwk.x), key.author)) {
      throw new Error('the stored key does not match its feed id');
    }
    return seed;
  }

  // The node's key file (src/home/identity.rs), as `potluck` writes it.
  // `published`: the latest sequence this browser signed, so that a node
  // taking the key waits until it holds that much before it publishes
  // (else it would fork the feed); left out when unknown or none.
  function keyFileText(seed, author, published) {
    var file = { curve: 'ed25519', secret: base64(seed), id: feedIdText(author) };
    if (published > 0) { file.published = published; }
    return JSON.stringify(file, null, 2) + '\n';
  }

  // The recovery code: the seed and a 3-byte check (the start of
  // BLAKE3("potluck-recovery-v1:" || seed)), 35 bytes in RFC 4648 base32,
  // 56 letters and digits in 14 groups of 4. Case, spaces and dashes
  // are ignored when it is read back.
  var BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  var RECOVERY_TAG = utf8.encode('potluck-recovery-v1:');

  function recoveryCheck(seed) { return blake3(concat(RECOVERY_TAG, seed)).subarray(0, 3); }

  function recoveryCodeOf(seed) {
    var data = concat(seed, recoveryCheck(seed));
    var out = '', acc = 0, nbits = 0;
    for (var i = 0; i < data.length; i++) {
      acc = (acc << 8) | data[i];
      nbits += 8;
      while (nbits >= 5) {
        nbits -= 5;
        out += BASE32[(acc >>> nbits) & 31];
      }
      acc &= (1 << nbits) - 1;
    }
    return out.match(/.{4}/g).join('-');
  }

  function seedFromRecoveryCode(code) {
    var text = String(code).toUpperCase().replace(/[\s-]/g, '');
    if (text.length !== 56) { throw new Error('a recovery code has 56 letters and digits'); }
    var data = new Uint8Array(35), acc = 0, nbits = 0, at = 0;
    for (var i = 0; i < text.length; i++) {
      var digit = BASE32.indexOf(text[i]);
      if (digit < 0) { throw new Error('a recovery code has only A to Z and 2 to 7'); }
      acc = ((acc << 5) | digit) & 0xfff;
      nbits += 5;
      if (nbits >= 8) {
        nbits -= 8;
        data[at++] = (acc >>> nbits) & 0xff;
      }
    }
    var seed = data.slice(0, 32);
    if (!equal(recoveryCheck(seed), data.subarray(32))) {
      throw new Error('this recovery code has a typo (its check does not match)');
    }
    return seed;
  }

  async function keyFileFromRecoveryCode(code) {
    var seed = seedFromRecoveryCode(code);
    return keyFileText(seed, (await keyFromSeed(seed)).author);
  }

  // ---------------------------------------------------------------------
  // This browser's feed, kept in IndexedDB: database `potluck`, object
  // store `identity`. Key "head": {privateKey (a CryptoKey, extractable
  // so that it can be exported), author, sequence, previous}; keys 1, 2, …:
  // each published message {sequence, id, bytes}, so that a page can send
  // again whatever a hub did not get (a later message cannot be taken
  // without it).

  var DB_NAME = 'potluck', STORE = 'identity', HEAD = 'head';
  var opening = null;

  function done(req) {
    return new Promise(function (resolve, reject) {
      req.onsuccess = function () { resolve(req.result); };
      req.onerror = function () { reject(req.error); };
    });
  }

  function database() {
    if (!opening) {
      var req = indexedDB.open(DB_NAME, 1);
      req.onupgradeneeded = function () { req.result.createObjectStore(STORE); };
      opening = done(req).then(function (db) {
        // Let a newer version of this script upgrade the database.
        db.onversionchange = function () { db.close(); opening = null; };
        return db;
      }, function (e) { opening = null; throw e; });
    }
    return opening;
  }

  // Runs `work(store)` in one transaction; resolves with what it returns
  // once the transaction has committed. `strict` durability: the head
  // must be on disk before a message is handed out, or a crash could make
  // the next message reuse its sequence, a fork.
  function transaction(mode, work) {
    return database().then(function (db) {
      return new Promise(function (resolve, reject) {
        var tx = db.transaction(STORE, mode, { durability: 'strict' });
        var result;
        tx.oncomplete = function () { resolve(result); };
        tx.onabort = tx.onerror = function () {
          reject(tx.error || new Error('the browser storage refused the change'));
        };
        try {
          result = work(tx.objectStore(STORE), tx);
        } catch (e) {
          tx.abort();
          reject(e);
        }
      });
    });
  }

  function getHead() {
    var req;
    return transaction('readonly', function (store) { req = store.get(HEAD); })
      .then(function () { return req.result || null; });
  }

  // One publisher at a time across this browser's tabs (Web Locks), so
  // that two answers cannot take the same sequence. Without Web Locks the
  // commit's check still refuses the second one.
  function exclusive(work) {
    if (navigator.locks && navigator.locks.request) {
      return navigator.locks.request('potluck-feed', work);
    }
    return work();
  }

  // The head, after creating a key if this browser has none. `add` never
  // replaces: if another tab created one meanwhile, that one is kept.
  async function ensureHead() {
    var head = await getHead();
    if (head) { return head; }
    var keys = await crypto.subtle.generateKey(ED25519, true, ['sign', 'verify']);
    var author = new Uint8Array(await crypto.subtle.exportKey('raw', keys.publicKey));
    var fresh = { privateKey: keys.privateKey, author: author, sequence: 0, previous: null };
    try {
      await transaction('readwrite', function (store) { store.add(fresh, HEAD); });
    } catch (e) {
      if (!e || e.name !== 'ConstraintError') { throw e; }
    }
    return getHead();
  }

  function describe(head) {
    return {
      feed: feedIdText(head.author),
      sequence: head.sequence,
      previous: head.previous ? messageIdText(head.previous) : null
    };
  }

  // This browser's feed: {feed, sequence, previous} (0 and null before
  // the first message). Creates the key on first use.
  function identity() {
    return exclusive(function () { return ensureHead().then(describe); });
  }

  // This browser's feed as `identity()` gives it, or null when it has no
  // key yet (a page that only reads makes none).
  function existingIdentity() {
    return getHead().then(function (head) { return head ? describe(head) : null; });
  }

  // Signs `content` (bytes from `about` or `rsvp`) as the next message of
  // this browser's feed and records it as the head; returns
  // {sequence, id (text), bytes}. The head is stored before the message is
  // returned, so a message that was sent is never signed over.
  function publish(content, timestamp) {
    var data = bytes(content);
    checkContent(data);
    return exclusive(async function () {
      var head = await ensureHead();
      var msg = await signMessage(head, {
        sequence: head.sequence + 1,
        previous: head.previous,
        timestamp: present(timestamp) ? timestamp : Date.now(),
        content: data
      });
      var raced = false;
      try {
        await transaction('readwrite', function (store, tx) {
          store.get(HEAD).onsuccess = function (e) {
            var now = e.target.result;
            if (!now || now.sequence !== head.sequence) {
              raced = true;
              tx.abort();
              return;
            }
            store.put({ sequence: msg.sequence, id: msg.id, bytes: msg.bytes }, msg.sequence);
            store.put({
              privateKey: head.privateKey, author: head.author,
              sequence: msg.sequence, previous: msg.id
            }, HEAD);
          };
        });
      } catch (e) {
        // The signed message is dropped unsent: no one saw it, no fork.
        if (raced) { throw new Error('another page of this browser answered at the same time; try again'); }
        throw e;
      }
      return { sequence: msg.sequence, id: msg.idText, bytes: msg.bytes };
    });
  }

  // The messages this browser published after `sequence` (0: all), in
  // order, as {sequence, id (text), bytes}.
  function messages(after) {
    var req;
    return transaction('readonly', function (store) {
      req = store.getAll(IDBKeyRange.bound(after || 0, Number.MAX_SAFE_INTEGER, true, false));
    }).then(function () {
      return req.result.map(function (m) {
        return { sequence: m.sequence, id: messageIdText(m.id), bytes: m.bytes };
      });
    });
  }

  async function storedSeed() {
    var head = await getHead();
    if (!head) { throw new Error('this browser has no key yet'); }
    return { seed: await seedOf(head), author: head.author, sequence: head.sequence };
  }

  // The key in the node's key-file format, to keep: with it, `potluck`
  // writes as this same person (docs/browser-keys.md).
  async function exportKeyFile() {
    var k = await storedSeed();
    return keyFileText(k.seed, k.author, k.sequence);
  }

  async function recoveryCode() {
    return recoveryCodeOf((await storedSeed()).seed);
  }

  window.potluckFeed = Object.freeze({
    // This browser's feed.
    supported: supported,
    identity: identity,
    existingIdentity: existingIdentity,
    publish: publish,
    messages: messages,
    exportKeyFile: exportKeyFile,
    recoveryCode: recoveryCode,
    keyFileFromRecoveryCode: keyFileFromRecoveryCode,
    seedFromRecoveryCode: seedFromRecoveryCode,
    // Content.
    about: about,
    rsvp: rsvp,
    // The format, for tests and other pages.
    blake3: blake3,
    encodeHeader: encodeHeader,
    signingInput: signingInput,
    messageId: messageId,
    signMessage: signMessage,
    keyFromSeed: keyFromSeed,
    base64: base64,
    fromBase64: fromBase64,
    feedIdText: feedIdText,
    messageIdText: messageIdText,
    parseMessageId: parseMessageId
  });
})();

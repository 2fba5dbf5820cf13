// enigma.js (Qlik's own engine client) through the gateway: opens the engine WebSocket
// with the session cookie and prints, one JSON line each, the notifications it receives
// until the engine's OnConnected, then closes.
//
//   node tests/js/enigma.js ws://127.0.0.1:8080/ext/app/engineData "X-Qlik-Session-ext-HTTP=…"
'use strict';
const WebSocket = require('ws');
const enigma = require('enigma.js');
const schema = require('enigma.js/schemas/12.2027.0.json');

const [url, cookie] = process.argv.slice(2);
const session = enigma.create({
  schema,
  url,
  // A browser sends its cookie by itself; Node's WebSocket is given it.
  createSocket: (u) => new WebSocket(u, { headers: cookie ? { Cookie: cookie } : {} }),
});
const done = setTimeout(() => { console.error('timed out'); process.exit(2); }, 10000);
session.on('notification:*', (method, params) => {
  console.log(JSON.stringify({ method, params }));
  if (method === 'OnConnected') {
    clearTimeout(done);
    session.close().then(() => process.exit(0));
  }
});
session.on('closed', (e) => console.log(JSON.stringify({ closed: e.code })));
session.open().catch((e) => console.log(JSON.stringify({ error: e.message })));

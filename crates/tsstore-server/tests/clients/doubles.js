// A client whose numbers are doubles, as every JavaScript client's are
// (a browser, a flow engine's function node). Used by tests/js_clients.rs.
//
//   node doubles.js rewrite < list.json > records.ndjson
//     reads a REST list answer and writes each object back as a record
//     {"timestamp", "data"} exactly as JavaScript sees it.
//   node --experimental-websocket doubles.js consume URL COUNT
//     a durable live reader: acknowledges every data message with the
//     timestamp as it parsed it, until COUNT have come or none came for
//     3 s; prints {"received": n, "last": timestamp as parsed}.
'use strict';

const mode = process.argv[2];

if (mode === 'rewrite') {
  let text = '';
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (chunk) => { text += chunk; });
  process.stdin.on('end', () => {
    const list = JSON.parse(text);
    const lines = list.objects.map((o) => JSON.stringify({ timestamp: o.timestamp, data: o.data }));
    process.stdout.write(lines.join('\n') + '\n');
  });
} else if (mode === 'consume') {
  const [url, count] = [process.argv[3], Number(process.argv[4])];
  const ws = new WebSocket(url);
  let received = 0;
  let last = null;
  let quiet = null;
  // Exits once the server has answered the close: every ack sent
  // before it has been read.
  const finish = () => {
    clearTimeout(quiet);
    process.stdout.write(JSON.stringify({ received, last }) + '\n');
    ws.onclose = () => process.exit(0);
    ws.close();
    setTimeout(() => process.exit(0), 5000);
  };
  const restartQuiet = () => {
    clearTimeout(quiet);
    quiet = setTimeout(finish, 3000);
  };
  ws.onopen = restartQuiet;
  ws.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message.type !== 'data') return;
    received += 1;
    last = message.timestamp;
    ws.send(JSON.stringify({ type: 'ack', timestamp: message.timestamp }));
    if (received >= count) finish(); else restartQuiet();
  };
  ws.onerror = () => { process.stderr.write('websocket error\n'); process.exit(2); };
} else {
  process.stderr.write('usage: doubles.js rewrite | consume URL COUNT\n');
  process.exit(64);
}

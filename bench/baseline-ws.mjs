// The ceiling: a bare `ws` server that frames each message once and writes the same bytes to
// every socket with one write each. POST /publish {seq} broadcasts {"seq":..,"payload":..}.
import http from 'node:http';
import { Sender, WebSocketServer } from 'ws';

const port = Number(process.env.PORT ?? 0);
const server = http.createServer((req, res) => {
  if (req.method !== 'POST' || req.url !== '/publish') return res.writeHead(404).end();
  let body = '';
  req.on('data', (chunk) => (body += chunk));
  req.on('end', () => {
    const frame = Sender.frame(Buffer.from(body), { fin: true, opcode: 1, mask: false, readOnly: true, rsv1: false });
    const bytes = Buffer.concat(frame);
    for (const socket of wss.clients) socket._socket.write(bytes);
    res.writeHead(200).end('{}');
  });
});
const wss = new WebSocketServer({ server, perMessageDeflate: false });
server.listen(port, '127.0.0.1', () => process.send?.({ cmd: 'ready', port: server.address().port }));

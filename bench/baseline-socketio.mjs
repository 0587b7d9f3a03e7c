// The peer a Node user would pick: Socket.IO (websocket transport), one room, io.to(room).emit.
import http from 'node:http';
import { Server } from 'socket.io';

const port = Number(process.env.PORT ?? 0);
const server = http.createServer((req, res) => {
  if (req.method !== 'POST' || req.url !== '/publish') return res.writeHead(404).end();
  let body = '';
  req.on('data', (chunk) => (body += chunk));
  req.on('end', () => {
    io.to('signals').emit('signal', body);
    res.writeHead(200).end('{}');
  });
});
const io = new Server(server, { transports: ['websocket'], perMessageDeflate: false, serveClient: false });
io.on('connection', (socket) => socket.join('signals'));
server.listen(port, '127.0.0.1', () => process.send?.({ cmd: 'ready', port: server.address().port }));

// A stand-in for `ear serve`'s original-compatible routes, for working on the
// page while the service has no POST /query: serves web/ (with the service's
// Content-Security-Policy), GET /data/<path>, /api/examples, /api/config and
// POST /query answering in the original's shape from an original-layout
// dataset (audio/<label>/**, frames/<label>/**), scores made up. Not used by
// ctest unless EAR_BROWSER_FAKE=1.
//   node fake_query.js WEB_DIR DATA_DIR PORT_FILE
'use strict';

const fs = require('fs');
const http = require('http');
const path = require('path');

const [webDir, dataDir, portFile] = process.argv.slice(2);
const CSP = "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; " +
  "script-src 'self'; style-src 'self'; connect-src 'self'; frame-ancestors 'none'; " +
  "base-uri 'none'; form-action 'self'";
const TYPES = { html: 'text/html; charset=utf-8', js: 'text/javascript; charset=utf-8',
                css: 'text/css; charset=utf-8', jpg: 'image/jpeg', png: 'image/png',
                wav: 'audio/wav' };

function walk(kind) {
  const items = [];
  const root = path.join(dataDir, kind === 'audio' ? 'audio' : 'frames');
  const visit = (dir) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name < b.name ? -1 : 1)) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) visit(full);
      else {
        const relative = path.relative(dataDir, full);
        items.push({ type: kind, url: `/ear/data/${relative}`, label: relative.split(path.sep)[1] });
      }
    }
  };
  visit(root);
  return items;
}

function send(response, status, type, body) {
  response.writeHead(status, { 'Content-Type': type, 'Content-Security-Policy': CSP,
                               'Content-Length': Buffer.byteLength(body) });
  response.end(body);
}

function file(response, full) {
  if (!fs.existsSync(full) || !fs.statSync(full).isFile()) return send(response, 404, 'text/plain', 'no');
  send(response, 200, TYPES[path.extname(full).slice(1)] || 'application/octet-stream', fs.readFileSync(full));
}

function query(request, response) {
  const chunks = [];
  request.on('data', (chunk) => chunks.push(chunk));
  request.on('end', () => {
    const body = Buffer.concat(chunks).toString('latin1');
    const name = (body.match(/name="file"; filename="([^"]*)"/) || [])[1];
    if (!name) return send(response, 400, 'application/json', '{"error": "No file"}');
    let kind = null;
    if (/\.(jpg|jpeg|png)$/i.test(name)) kind = 'image';
    else if (/\.(wav|mp3|webm|mp4|m4a|ogg)$/i.test(name)) kind = 'audio';
    // As Ear does: a picture's name on bytes that are no JPEG or PNG is refused.
    const start = body.indexOf('\r\n\r\n') + 4;
    const magic = Buffer.from(body.slice(start, start + 4), 'latin1').toString('hex');
    if (kind === 'image' && !/^ffd8ff|^89504e47/.test(magic)) kind = null;
    if (!kind) return send(response, 400, 'application/json', '{"error": "Unsupported file type"}');
    const score = (i) => Math.round((0.9 - i * 0.07) * 1000) / 1000;
    const same = walk(kind).slice(0, 5).map((item, i) => ({ ...item, score: score(i) }));
    const cross = walk(kind === 'audio' ? 'image' : 'audio').slice(0, 5)
      .map((item, i) => ({ ...item, score: score(i + 1) }));
    send(response, 200, 'application/json',
         JSON.stringify({ query_type: kind, same_modality: same, cross_modality: cross }));
  });
}

const server = http.createServer((request, response) => {
  const url = decodeURIComponent(new URL(request.url, 'http://x').pathname).replace(/^\/ear\//, '/');
  if (url.includes('..')) return send(response, 400, 'text/plain', 'no');
  if (request.method === 'POST' && url === '/query') return query(request, response);
  if (url === '/') return file(response, path.join(webDir, 'index.html'));
  if (url === '/ce-loss') return file(response, path.join(webDir, 'ce-loss.html'));
  if (url === '/api/config') return send(response, 200, 'application/json', '{"home_url": "/"}');
  if (url === '/api/examples') {
    const examples = walk('audio').slice(0, 6).map((item) => ({
      id: path.basename(item.url), label: item.label, audio_url: item.url.replace(/^\/ear\//, '') }));
    return send(response, 200, 'application/json', JSON.stringify({ examples }));
  }
  if (url.startsWith('/data/')) return file(response, path.join(dataDir, url.slice(6)));
  return file(response, path.join(webDir, url.slice(1)));
});
server.listen(0, '127.0.0.1', () => fs.writeFileSync(portFile, String(server.address().port)));

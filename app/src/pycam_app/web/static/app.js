// pycam live view: H.264 fragmented MP4 over WebSocket into Media Source Extensions, MJPEG fallback,
// device controls generated from /api/spec, events over SSE, recordings playback.
'use strict';
const params = new URLSearchParams(location.search);
const pycam = window.pycam = {stats: {fragments: 0, frames: 0, decoded: 0, lastCounter: null, latencies: []},
  player: null, mode: null};

async function api(path, options = {}) {
  options.headers = Object.assign({'X-Requested-With': 'pycam'}, options.headers || {});
  const r = await fetch(path, options);
  if (r.status === 401) { location.href = '/login?next=' + encodeURIComponent(location.pathname + location.search); }
  if (!r.ok) throw new Error((await r.json().catch(() => ({}))).error || r.statusText);
  return r.json();
}

class LivePlayer {
  constructor(video, stream) { this.video = video; this.stream = stream; this.queue = []; this.closed = false; }
  start() {
    if (!window.MediaSource) { fallback('no Media Source Extensions'); return; }
    this.ms = new MediaSource();
    this.video.src = URL.createObjectURL(this.ms);
    this.ms.addEventListener('sourceopen', () => this.connect(), {once: true});
  }
  connect() {
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    this.ws = new WebSocket(`${proto}//${location.host}/api/live/${this.stream}`);
    this.ws.binaryType = 'arraybuffer';
    this.ws.onmessage = (m) => {
      if (typeof m.data === 'string') {
        const info = JSON.parse(m.data);
        const mime = `video/mp4; codecs="${info.codec}"`;
        if (!MediaSource.isTypeSupported(mime)) { fallback('browser cannot play ' + mime); return; }
        this.info = info;
        this.sb = this.ms.addSourceBuffer(mime);
        this.sb.mode = 'segments';
        this.sb.addEventListener('updateend', () => { this.chase(); this.pump(); });
      } else {
        pycam.stats.fragments++;
        this.queue.push(new Uint8Array(m.data));
        this.pump();
      }
    };
    this.ws.onclose = () => { if (!this.closed) setTimeout(() => restart(), 1000); };
  }
  pump() {
    if (!this.sb || this.sb.updating || !this.queue.length || this.ms.readyState !== 'open') return;
    const parts = this.queue.splice(0);
    const buf = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let off = 0;
    for (const p of parts) { buf.set(p, off); off += p.length; }
    try { this.sb.appendBuffer(buf); } catch (e) { console.warn('append failed', e); restart(); }
  }
  chase() {
    // Stay at the live edge: jump forward when more than a few frames behind, trim old data.
    const v = this.video, b = this.sb.buffered;
    if (!b.length) return;
    const start = b.start(b.length - 1), end = b.end(b.length - 1);
    const lag = end - v.currentTime;
    if (v.currentTime < start || lag > 0.5) v.currentTime = Math.max(start, end - 0.02);
    // Small lags are caught up smoothly rather than by seeking (a seek costs a decoder flush).
    else v.playbackRate = lag > 0.12 ? 1.5 : lag > 0.06 ? 1.1 : 1.0;
    if (v.currentTime - b.start(0) > 30 && !this.sb.updating) this.sb.remove(0, v.currentTime - 10);
    if (v.paused) v.play().catch(() => {});
  }
  close() { this.closed = true; if (this.ws) this.ws.close(); }
}

function fallback(why) {
  console.warn('MJPEG fallback:', why);
  document.getElementById('mode').value = 'mjpeg';
  restart();
}

function restart() {
  if (pycam.player) pycam.player.close();
  const video = document.getElementById('video'), img = document.getElementById('mjpeg');
  const mode = document.getElementById('mode').value, stream = document.getElementById('stream').value;
  pycam.mode = mode;
  if (mode === 'mjpeg') {
    video.hidden = true; img.hidden = false; img.src = '/api/mjpeg?t=' + Date.now();
    pycam.player = {close() { img.src = ''; }};
  } else {
    img.hidden = true; img.src = ''; video.hidden = false;
    pycam.player = new LivePlayer(video, stream);
    pycam.player.start();
  }
}

// Frame statistics (?stats=1): read the synthetic stamp from each displayed frame.
function watchFrames() {
  const video = document.getElementById('video');
  if (!('requestVideoFrameCallback' in HTMLVideoElement.prototype)) return;
  const canvas = document.createElement('canvas');
  const ctx = canvas.getContext('2d', {willReadFrequently: true});
  const out = document.getElementById('stats');
  const onFrame = () => {
    const now = Date.now();
    const s = pycam.stats, w = video.videoWidth, h = video.videoHeight;
    s.frames++;
    if (w && h) {
      if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
      ctx.drawImage(video, 0, 0, w, h);
      const st = PycamStamp.fromCanvas(ctx, w, h);
      if (st) {
        s.decoded++; s.lastCounter = st.counter;
        s.latencies.push(PycamStamp.latencyMs(st.wallMs, now));
        if (s.latencies.length > 1000) s.latencies.shift();
        out.textContent = `frame ${st.counter}  ${s.latencies[s.latencies.length - 1]} ms`;
      }
    }
    video.requestVideoFrameCallback(onFrame);
  };
  video.requestVideoFrameCallback(onFrame);
}

async function controls() {
  const [specDoc, values] = await Promise.all([api('/api/spec'), api('/api/properties')]);
  const box = document.getElementById('controls');
  box.textContent = '';
  for (const svc of specDoc.services) {
    for (const p of svc.properties) {
      if (p.access !== 'rw' || !['boolean', 'string'].includes(p.schema.type)) continue;
      const label = document.createElement('label');
      label.textContent = `${svc.name} ${p.name}`;
      let input;
      if (p.schema.type === 'boolean') {
        input = document.createElement('input'); input.type = 'checkbox'; input.checked = values[svc.name][p.name];
        input.onchange = () => setProp(svc.name, p.name, input.checked);
      } else if (p.schema.enum) {
        input = document.createElement('select');
        for (const c of p.schema.enum) input.add(new Option(c, c, false, c === values[svc.name][p.name]));
        input.onchange = () => setProp(svc.name, p.name, input.value);
      } else continue;
      input.id = `prop-${svc.name}-${p.name}`;
      label.append(input); box.append(label);
    }
    for (const a of svc.actions) {
      if (a.params.some((x) => x.required)) continue;
      const b = document.createElement('button');
      b.textContent = `${a.name}`; b.title = `${svc.name}: ${a.description}`;
      b.onclick = () => api(`/api/services/${svc.name}/actions/${a.name}`, {method: 'POST',
        headers: {'Content-Type': 'application/json'}, body: '{}'}).then(loadRecordings).catch(alert);
      box.append(b);
    }
  }
}

function setProp(svc, name, value) {
  return api(`/api/services/${svc}/properties/${name}`, {method: 'PUT',
    headers: {'Content-Type': 'application/json'}, body: JSON.stringify({value})}).catch(alert);
}

async function loadRecordings() {
  const {recordings} = await api('/api/recordings?limit=50');
  const list = document.getElementById('recordings');
  list.textContent = '';
  for (const r of recordings) {
    const li = document.createElement('li');
    li.textContent = `${new Date(r.start * 1000).toLocaleString()}  ${r.kind}  ${r.duration.toFixed(1)} s  ${r.state}`;
    li.onclick = () => { const p = document.getElementById('playback'); p.hidden = false;
      p.src = `/api/recordings/${r.id}/video`; p.play().catch(() => {}); };
    list.append(li);
  }
}

function events() {
  const box = document.getElementById('events');
  const es = new EventSource('/api/events');
  es.onmessage = es.onerror = null;
  const show = (e) => {
    const ev = JSON.parse(e.data);
    box.textContent = `${new Date(ev.time * 1000).toLocaleTimeString()} ${ev.service} ${ev.event} ` +
      `${JSON.stringify(ev.data)}\n` + box.textContent.slice(0, 4000);
    if (ev.event.startsWith('recording')) loadRecordings();
  };
  for (const name of ['property-changed', 'motion-detected', 'motion-ended', 'recording-started',
    'recording-stopped', 'recording-deleted']) es.addEventListener(name, show);
}

async function init() {
  const session = await api('/api/session');
  const info = await api('/api/properties');
  document.getElementById('device').textContent =
    `${info['device-information'].model || ''} ${info['device-information']['serial-number'] || ''} — ${session.user}`;
  if (params.get('stream')) document.getElementById('stream').value = params.get('stream');
  if (params.get('mode')) document.getElementById('mode').value = params.get('mode');
  document.getElementById('stream').onchange = restart;
  document.getElementById('mode').onchange = restart;
  document.getElementById('snap').onclick = () => window.open('/snapshot.jpg?t=' + Date.now());
  document.getElementById('logout').onclick = async () => {
    await api('/api/logout', {method: 'POST'}); location.href = '/login';
  };
  restart();
  if (params.get('stats')) watchFrames();
  controls().catch(console.error);
  loadRecordings().catch(console.error);
  events();
}
init();

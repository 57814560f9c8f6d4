// ReaLJam browser client (arXiv 2502.21267 §3): the client owns the clock, plays the agent's chords from its
// local plan buffer, and asks the server for a new plan once a beat. No build step, no external code.
"use strict";

const FRAMES_PER_BEAT = 4;
const LOW = 48, HIGH = 84; // pitches drawn (C3..C6)
const AHEAD = 40, BEHIND = 12; // frames shown above / below the playhead
const KEYS = "awsedftgyhujkolp;'"; // computer keys from C upward (white row + black row)
const el = (id) => document.getElementById(id);

const jam = {
  ws: null, ctx: null, running: false, useAudioClock: false,
  startTime: 0, frameDur: 0.15, settings: null, config: null,
  buffer: new Map(), // frame -> {symbol, pitches, onset, token, committed}
  anticipated: new Map(), // frame -> pitch the agent expects from the user
  committedUntil: 0, nextRequest: 0, scheduledUntil: 0,
  pending: [], sent: [], notes: [], held: new Map(), // held: pitch -> {onFrame, voice}
  played: [], chordVoices: [], plans: 0, errors: [], rtt: [], waiting: null, octave: 0,
};
window.__jam = jam;

// ---------------------------------------------------------------- clock
function now() { return jam.useAudioClock ? jam.ctx.currentTime : performance.now() / 1000; }
function position() { return jam.running ? (now() - jam.startTime) / jam.frameDur : 0; } // frames, fractional
function frameTime(f) { return jam.startTime + f * jam.frameDur; }
jam.frame = () => Math.floor(position());

// ---------------------------------------------------------------- sound (Web Audio oscillators)
function voice(pitch, when, kind) {
  const ctx = jam.ctx, osc = ctx.createOscillator(), gain = ctx.createGain();
  osc.type = kind === "user" ? "sawtooth" : "triangle";
  osc.frequency.value = 440 * Math.pow(2, (pitch - 69) / 12);
  const level = kind === "user" ? 0.08 : 0.06;
  gain.gain.setValueAtTime(0, when);
  gain.gain.linearRampToValueAtTime(level, when + 0.01);
  osc.connect(gain).connect(ctx.destination);
  osc.start(when);
  return { osc, gain };
}
function release(v, when) {
  v.gain.gain.cancelScheduledValues(when);
  v.gain.gain.setTargetAtTime(0, when, 0.03);
  v.osc.stop(when + 0.3);
}
function click(when, accent) {
  if (!el("metronome").checked) return;
  const ctx = jam.ctx, osc = ctx.createOscillator(), gain = ctx.createGain();
  osc.frequency.value = accent ? 1760 : 1320;
  gain.gain.setValueAtTime(0.12, when);
  gain.gain.exponentialRampToValueAtTime(0.001, when + 0.05);
  osc.connect(gain).connect(ctx.destination);
  osc.start(when); osc.stop(when + 0.06);
}

// ---------------------------------------------------------------- user input: keyboard, MIDI, test hook
function noteOn(pitch) {
  if (!jam.running || jam.held.has(pitch)) return;
  const frame = Math.max(0, Math.round(position()));
  const v = jam.useAudioClock ? voice(pitch, jam.ctx.currentTime, "user") : null;
  jam.held.set(pitch, { onFrame: frame, voice: v });
  jam.pending.push({ pitch, frame, on: true });
}
function noteOff(pitch) {
  const h = jam.held.get(pitch);
  if (!h) return;
  jam.held.delete(pitch);
  const frame = Math.max(h.onFrame + 1, Math.round(position()));
  if (h.voice) release(h.voice, jam.ctx.currentTime);
  jam.notes.push({ pitch, on: h.onFrame, off: frame });
  jam.pending.push({ pitch, frame, on: false });
}
window.__inject = (pitch, on) => (on ? noteOn(pitch) : noteOff(pitch));
function keyPitch(key) {
  const i = KEYS.indexOf(key.toLowerCase());
  return i < 0 ? null : 60 + 12 * jam.octave + i;
}
document.addEventListener("keydown", (e) => {
  if (e.target.tagName === "INPUT" || e.target.tagName === "SELECT" || e.repeat) return;
  if (e.key === "z") { jam.octave = Math.max(jam.octave - 1, -1); return drawPiano(); }
  if (e.key === "x") { jam.octave = Math.min(jam.octave + 1, 1); return drawPiano(); }
  const p = keyPitch(e.key);
  if (p !== null) { noteOn(p); e.preventDefault(); }
});
document.addEventListener("keyup", (e) => {
  const p = keyPitch(e.key);
  if (p !== null) noteOff(p);
});
if (navigator.requestMIDIAccess) {
  navigator.requestMIDIAccess().then((midi) => {
    for (const input of midi.inputs.values()) {
      input.onmidimessage = (m) => {
        const [status, pitch, velocity] = m.data, kind = status & 0xf0;
        if (kind === 0x90 && velocity > 0) noteOn(pitch);
        else if (kind === 0x80 || kind === 0x90) noteOff(pitch);
      };
    }
  }, () => {});
}

// ---------------------------------------------------------------- the server connection
function send(message) {
  if (jam.ws && jam.ws.readyState === WebSocket.OPEN) jam.ws.send(JSON.stringify(message));
}
function readSettings() {
  const beats = (id) => Math.round(Number(el(id).value) * FRAMES_PER_BEAT);
  return {
    bpm: Number(el("bpm").value), lookahead: beats("lookahead"), commit: beats("commit"),
    silence_beats: Math.round(Number(el("silence").value)),
    temperature: Number(el("temperature").value), model: el("model").value || "rl",
  };
}
function onMessage(event) {
  const msg = JSON.parse(event.data);
  if (msg.type === "config") { jam.config = msg; jam.settings = msg.settings; }
  else if (msg.type === "plan") mergePlan(msg);
  else if (msg.type === "wait") jam.waiting = msg.plan_from;
  else if (msg.type === "error") { jam.errors.push(msg.message); status("server: " + msg.message); }
}
function mergePlan(plan) {
  // ReaLJam client merge: committed frames keep their chords, the rest of the plan overwrites the tail.
  jam.plans += 1; jam.waiting = null;
  if (typeof plan.t === "number") jam.rtt.push(performance.now() - plan.t);
  plan.chords.forEach((chord, i) => {
    const f = plan.start_frame + i;
    if (f >= jam.committedUntil) jam.buffer.set(f, { ...chord, token: plan.tokens[i] });
    if (plan.anticipated[i] >= 0) jam.anticipated.set(f, plan.anticipated[i]);
  });
  jam.committedUntil = Math.max(jam.committedUntil, plan.commit_until);
}
function requestPlan(frame) {
  const events = jam.pending.filter((e) => e.frame < frame);
  jam.pending = jam.pending.filter((e) => e.frame >= frame);
  jam.sent.push(...events);
  send({ type: "notes", frame, events, t: performance.now() });
}

// ---------------------------------------------------------------- the scheduler (every 20 ms)
function tick() {
  if (!jam.running) return;
  const pos = position();
  while (jam.nextRequest <= pos) { // once a beat, on the beat
    requestPlan(jam.nextRequest);
    jam.nextRequest += FRAMES_PER_BEAT;
  }
  const horizon = Math.floor(pos + 0.12 / jam.frameDur) + 1;
  for (let f = Math.max(jam.scheduledUntil, Math.ceil(pos)); f < horizon; f++) {
    if (jam.useAudioClock) {
      if (f % FRAMES_PER_BEAT === 0) click(frameTime(f), f % 16 === 0);
      playChordAt(f);
    }
    jam.scheduledUntil = f + 1;
  }
}
function playChordAt(f) {
  if (f < jam.settings.silence_beats * FRAMES_PER_BEAT) return;
  const chord = jam.buffer.get(f), prev = jam.buffer.get(f - 1);
  const changed = !chord || !prev || chord.onset || chord.symbol !== prev.symbol;
  if (!changed) return;
  const when = frameTime(f);
  jam.chordVoices.forEach((v) => release(v, when));
  jam.chordVoices = [];
  if (chord && chord.pitches.length) {
    jam.chordVoices = chord.pitches.map((p) => voice(p, when, "chord"));
    jam.played.push({ frame: f, pitches: chord.pitches, symbol: chord.symbol });
  } else jam.played.push({ frame: f, pitches: [], symbol: "N" });
}

// ---------------------------------------------------------------- drawing
const wf = el("waterfall"), pianoCanvas = el("piano");
const colW = wf.width / (HIGH - LOW + 1);
const isBlack = (p) => [1, 3, 6, 8, 10].includes(p % 12);
function yOf(frameOffset) { // frames from the playhead -> canvas y (future is up)
  const playY = wf.height * AHEAD / (AHEAD + BEHIND);
  return playY - frameOffset * (playY / AHEAD);
}
function draw() {
  const g = wf.getContext("2d"), pos = position(), h = wf.height / (AHEAD + BEHIND);
  g.clearRect(0, 0, wf.width, wf.height);
  for (let p = LOW; p <= HIGH; p++) if (isBlack(p)) { g.fillStyle = "#191b23"; g.fillRect((p - LOW) * colW, 0, colW, wf.height); }
  for (let f = Math.ceil(pos - BEHIND); f < pos + AHEAD; f++) { // beat lines
    if (f % FRAMES_PER_BEAT) continue;
    g.fillStyle = f % 16 === 0 ? "#3a3f4f" : "#2a2e3a";
    g.fillRect(0, yOf(f - pos), wf.width, 1);
  }
  for (let f = Math.floor(pos - BEHIND); f < pos + AHEAD; f++) { // planned chords (blue)
    const c = jam.buffer.get(f);
    if (!c || !c.pitches.length) continue;
    g.fillStyle = f < jam.committedUntil ? "#2f6fdc" : "#7fa7ee";
    const gap = c.onset ? 2 : 0; // a struck chord starts a new block
    for (const p of c.pitches) if (p >= LOW && p <= HIGH) g.fillRect((p - LOW) * colW + 1, yOf(f + 1 - pos), colW - 2, h - gap);
    if (c.onset && f > pos) { g.fillStyle = "#dfe8ff"; g.font = "12px sans-serif"; g.fillText(c.symbol, wf.width - 70, yOf(f + 1 - pos) + 12); }
  }
  g.fillStyle = "#9a9aa8"; // the melody the agent imagines (grey dots)
  for (const [f, p] of jam.anticipated) if (f > pos && f < pos + AHEAD && p >= LOW && p <= HIGH) {
    g.beginPath(); g.arc((p - LOW + 0.5) * colW, yOf(f + 0.5 - pos), 3, 0, 2 * Math.PI); g.fill();
  }
  g.fillStyle = "#f39c32"; // the user's notes (orange)
  const userNotes = jam.notes.concat([...jam.held].map(([pitch, h]) => ({ pitch, on: h.onFrame, off: pos })));
  for (const n of userNotes) if (n.off > pos - BEHIND && n.pitch >= LOW && n.pitch <= HIGH) {
    g.fillRect((n.pitch - LOW) * colW + 3, yOf(n.off - pos), colW - 6, Math.max(yOf(n.on - pos) - yOf(n.off - pos), 2));
  }
  g.fillStyle = "#e9e9e9"; g.fillRect(0, yOf(0), wf.width, 2); // playhead
  if (jam.committedUntil > pos) { // commit boundary
    g.setLineDash([6, 4]); g.strokeStyle = "#2f6fdc"; g.beginPath();
    g.moveTo(0, yOf(jam.committedUntil - pos)); g.lineTo(wf.width, yOf(jam.committedUntil - pos)); g.stroke(); g.setLineDash([]);
  }
  if (jam.running && jam.waiting !== null) { g.fillStyle = "#ccc"; g.font = "16px sans-serif"; g.fillText(`listening: the agent joins at beat ${jam.settings.silence_beats + 1}`, 12, 24); }
  drawPiano();
  if (jam.running) updateStatus();
  requestAnimationFrame(draw);
}
function drawPiano() {
  const g = pianoCanvas.getContext("2d"), sounding = new Set();
  const c = jam.buffer.get(jam.frame());
  if (jam.running && c && jam.frame() >= jam.settings.silence_beats * FRAMES_PER_BEAT) c.pitches.forEach((p) => sounding.add(p));
  g.clearRect(0, 0, pianoCanvas.width, pianoCanvas.height);
  for (let p = LOW; p <= HIGH; p++) {
    const black = isBlack(p);
    g.fillStyle = jam.held.has(p) ? "#f39c32" : sounding.has(p) ? "#4c86e8" : black ? "#222" : "#f2f2f2";
    g.fillRect((p - LOW) * colW + 1, 0, colW - 2, black ? 80 : 118);
    const i = p - 60 - 12 * jam.octave;
    if (i >= 0 && i < KEYS.length) {
      g.fillStyle = black ? "#ddd" : "#333"; g.font = "12px monospace";
      g.fillText(KEYS[i].toUpperCase(), (p - LOW) * colW + colW / 2 - 4, black ? 70 : 108);
    }
  }
}
jam.plannedAhead = () => [...jam.buffer.keys()].filter((f) => f > position() && jam.buffer.get(f).pitches.length).length;
jam.bluePixelsAbove = () => { // planned-chord pixels above the playhead, read back from the canvas
  const data = wf.getContext("2d").getImageData(0, 0, wf.width, Math.floor(yOf(0)) - 1).data;
  let n = 0;
  for (let i = 0; i < data.length; i += 4) if (data[i + 2] > 200 && data[i] < 140) n++;
  return n;
};
function status(text) { el("status").textContent = text; }
function updateStatus() {
  const r = jam.rtt.slice(-20).sort((a, b) => a - b), median = r.length ? r[Math.floor(r.length / 2)] : NaN;
  status(`beat ${Math.floor(position() / FRAMES_PER_BEAT) + 1} · plans ${jam.plans} · round trip ${median.toFixed(0)} ms`);
}

// ---------------------------------------------------------------- start / stop, settings mid-jam
async function start() {
  jam.ctx = jam.ctx || new (window.AudioContext || window.webkitAudioContext)();
  try { await jam.ctx.resume(); } catch (e) { /* no audio: the clock falls back to performance.now */ }
  jam.useAudioClock = jam.ctx.state === "running";
  const settings = readSettings();
  jam.frameDur = 60 / settings.bpm / FRAMES_PER_BEAT;
  Object.assign(jam, { buffer: new Map(), anticipated: new Map(), committedUntil: 0, nextRequest: 0,
    scheduledUntil: 0, pending: [], sent: [], notes: [], played: [], plans: 0, errors: [], rtt: [], waiting: null });
  jam.ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`);
  jam.ws.onmessage = onMessage;
  jam.ws.onclose = () => { if (jam.running) status("connection closed"); };
  await new Promise((resolve, reject) => { jam.ws.onopen = resolve; jam.ws.onerror = reject; });
  send({ type: "hello", ...settings });
  jam.settings = settings;
  jam.startTime = now() + 0.3;
  jam.running = true;
  el("start").textContent = "Stop"; el("save").disabled = false;
  ["bpm", "silence"].forEach((id) => (el(id).disabled = true));
}
function stop() {
  jam.running = false;
  [...jam.held.keys()].forEach(noteOff);
  if (jam.ctx) jam.chordVoices.forEach((v) => release(v, jam.ctx.currentTime));
  jam.chordVoices = [];
  if (jam.ws) jam.ws.close();
  el("start").textContent = "Start";
  ["bpm", "silence"].forEach((id) => (el(id).disabled = false));
}
el("start").addEventListener("click", () => (jam.running ? stop() : start()));
["lookahead", "commit", "temperature", "model"].forEach((id) =>
  el(id).addEventListener("change", () => { if (jam.running) { const { bpm, silence_beats, ...s } = readSettings(); send({ type: "settings", ...s }); } }));

// ---------------------------------------------------------------- save the jam as a MIDI file (both parts)
function midiBytes() {
  const tpf = 120; // ticks per frame (480 per quarter note)
  const vlq = (n) => { const out = [n & 0x7f]; while ((n >>= 7)) out.unshift((n & 0x7f) | 0x80); return out; };
  const track = (events) => { // events: [tick, bytes]
    events.sort((a, b) => a[0] - b[0] || a[2] - b[2]);
    let last = 0; const body = [];
    for (const [tick, bytes] of events) { body.push(...vlq(tick - last), ...bytes); last = tick; }
    body.push(0, 0xff, 0x2f, 0);
    return [0x4d, 0x54, 0x72, 0x6b, (body.length >>> 24) & 255, (body.length >>> 16) & 255, (body.length >>> 8) & 255, body.length & 255, ...body];
  };
  const tempo = Math.round(60e6 / (jam.settings ? jam.settings.bpm : 120));
  const meta = track([[0, [0xff, 0x51, 3, (tempo >> 16) & 255, (tempo >> 8) & 255, tempo & 255], 0]]);
  const user = [];
  for (const n of jam.notes) { user.push([n.on * tpf, [0x90, n.pitch, 96], 1], [n.off * tpf, [0x80, n.pitch, 0], 0]); }
  const agent = [];
  jam.played.forEach((c, i) => {
    const end = i + 1 < jam.played.length ? jam.played[i + 1].frame : Math.max(jam.frame(), c.frame + 1);
    for (const p of c.pitches) agent.push([c.frame * tpf, [0x91, p, 72], 1], [end * tpf, [0x81, p, 0], 0]);
  });
  const header = [0x4d, 0x54, 0x68, 0x64, 0, 0, 0, 6, 0, 1, 0, 3, 0x01, 0xe0];
  return new Uint8Array([...header, ...meta, ...track(user), ...track(agent)]);
}
jam.midiBytes = () => Array.from(midiBytes());
el("save").addEventListener("click", () => {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(new Blob([midiBytes()], { type: "audio/midi" }));
  a.download = "realjam.mid";
  a.click();
});

// ---------------------------------------------------------------- boot
fetch("models").then((r) => r.json()).then((info) => {
  for (const m of info.models) { const o = document.createElement("option"); o.value = o.textContent = m; el("model").appendChild(o); }
  el("lookahead").max = Math.floor(info.max_lookahead / FRAMES_PER_BEAT);
  status("ready: press Start");
});
setInterval(tick, 20);
drawPiano();
requestAnimationFrame(draw);

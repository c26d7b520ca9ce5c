// The browser client of `voice-agent serve`: no build step, no framework.
// Microphone (with the browser's echo cancellation and noise suppression) -> 16 kHz PCM16
// frames over the WebSocket; the agent's PCM16 -> a playback buffer that "clear" empties.
"use strict";

const $ = (id) => document.getElementById(id);
// What the page did, for anyone to read (the tests do): never the agent's own account.
const stats = (window.voiceAgent = {
  state: "stopped", transcripts: [], latencies: [], received: 0, played: 0, queued: 0, clears: 0, framesSent: 0, closed: null,
});
let session = null;

function say(cls, text) {
  const p = document.createElement("p");
  p.className = cls;
  p.textContent = text;
  $("log").appendChild(p);
  p.scrollIntoView({ block: "end" });
  return p;
}

function setState(state) {
  stats.state = state;
  $("state").textContent = state;
}

function socketUrl() {
  const token = new URLSearchParams(location.search).get("token");
  const url = new URL("ws", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  if (token) url.searchParams.set("token", token);
  return url.href;
}

async function start() {
  const mic = await navigator.mediaDevices.getUserMedia({
    audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
  });
  const { capture, source } = await captureContext(mic);
  await capture.audioWorklet.addModule("worklet.js");
  const ws = new WebSocket(socketUrl());
  ws.binaryType = "arraybuffer";
  session = { mic, capture, ws, playback: null, player: null };

  const tap = new AudioWorkletNode(capture, "capture"); // 16 kHz frames whatever the context's rate
  const mute = capture.createGain();
  mute.gain.value = 0; // the node must be pulled to run; nothing of the mic is played
  source.connect(tap).connect(mute).connect(capture.destination);
  tap.port.onmessage = (e) => {
    $("level").style.width = `${Math.max(0, Math.min(100, (e.data.db + 70) * 1.6))}%`;
    if (ws.readyState === WebSocket.OPEN) {
      ws.send(e.data.pcm);
      stats.framesSent++;
    }
  };

  ws.onmessage = (e) => (typeof e.data === "string" ? onMessage(JSON.parse(e.data)) : onAudio(e.data));
  ws.onclose = (e) => {
    stats.closed = { code: e.code, reason: e.reason };
    say(e.code === 1000 ? "note" : "error", `connection closed (${e.code}${e.reason ? ": " + e.reason : ""})`);
    stop();
  };
  $("start").textContent = "Stop";
}

async function captureContext(mic) {
  // At 16 kHz the browser resamples the microphone itself (Chrome); a browser that cannot
  // (or ?capture=native) gets its own rate, and the worklet resamples.
  if (new URLSearchParams(location.search).get("capture") !== "native") {
    const capture = new AudioContext({ sampleRate: 16000 });
    try {
      return { capture, source: capture.createMediaStreamSource(mic) };
    } catch (err) {
      capture.close();
    }
  }
  const capture = new AudioContext();
  return { capture, source: capture.createMediaStreamSource(mic) };
}

async function onMessage(m) {
  if (m.type === "ready") {
    // Played at the agent's own rate: no resampling in the page.
    const playback = new AudioContext({ sampleRate: m.agent_sample_rate });
    await playback.audioWorklet.addModule("worklet.js");
    const player = new AudioWorkletNode(playback, "playback");
    player.connect(playback.destination);
    player.port.onmessage = (e) => Object.assign(stats, { played: e.data.played, queued: e.data.queued });
    Object.assign(session, { playback, player });
  } else if (m.type === "state") {
    setState(m.state);
  } else if (m.type === "transcript" && m.final) {
    stats.transcripts.push({ role: m.role, text: m.text });
    say(m.role, `${m.role === "user" ? "you" : "agent"}: ${m.text}`);
  } else if (m.type === "latency") {
    stats.latencies.push(m.ms);
    say("note", `(${Math.round(m.ms)} ms to first audio)`);
  } else if (m.type === "interrupted") {
    say("note", m.heard ? `(interrupted; you heard: "${m.heard}")` : "(interrupted)");
  } else if (m.type === "clear") {
    stats.clears++;
    session?.player?.port.postMessage("clear");
  } else if (m.type === "error") {
    say("error", m.message);
  }
}

function onAudio(buffer) {
  if (!session?.player) return;
  const pcm = new Int16Array(buffer);
  stats.received += pcm.length;
  const samples = new Float32Array(pcm.length);
  for (let i = 0; i < pcm.length; i++) samples[i] = pcm[i] / 32768;
  session.player.port.postMessage(samples.buffer, [samples.buffer]);
}

function stop() {
  if (!session) return;
  const s = session;
  session = null;
  s.mic.getTracks().forEach((t) => t.stop());
  if (s.ws.readyState <= WebSocket.OPEN) s.ws.close(1000, "bye");
  s.capture.close();
  s.playback?.close();
  setState("stopped");
  $("start").textContent = "Start";
}

$("start").onclick = () => {
  if (session) stop();
  else start().catch((err) => say("error", `cannot start: ${err.message}`));
};

// Briefings in the 3D hall: the stage screen shows the slide (a canvas texture), the cast stand
// on the stage's speaker spots and the speaking one's mouth follows the visemes, the narration
// plays in step with every other viewer, and a panel carries captions and the question form.
// Installed by App.js (features.js); window.emachiBriefing exposes the playback for tests.
//
// The synthesized narration is a stage voice like a live one (docs/voice.md): it plays in the
// voice's AudioContext (app.voiceAudio) through a PannerNode at the speaking presenter's spot
// and a GainNode at the gain the server decides for this listener, as for a live voice from
// there (AUDIO_SUBS's `stage`: the PA gain across the auditorium, by distance nearby, nothing in
// a booth, at a table or in a quiet zone), smoothed like a voice's, into the voice mix, so it
// leaves through the echo-safe output and a resident with an open microphone does not send it
// back. Watch-only viewers (watch.js) hear it plainly.

import { MsgType, briefingJoin } from '../protocol.js';
import { BriefingPanel, waitingText } from './BriefingPanel.js';
import { BriefingPlayer } from './BriefingPlayer.js';
import { PresenterFace } from './PresenterFace.js';
import { SlideCanvas } from './SlideCanvas.js';

const epochNow = () => performance.timeOrigin + performance.now();
const SMOOTH_S = 0.05; // as a live voice's gain (VoiceChannel.js)
const MOUTH_Y = 1.6;

/** The connection interface BriefingPlayer uses, on top of the app's feature API. */
class AppLink extends EventTarget {
  constructor(app) {
    super();
    this.app = app;
    this.welcome = true;
    const forward = (msg) => this.dispatchEvent(new CustomEvent('message', { detail: msg }));
    this.undo = [app.on('BRIEFING', forward), app.on('QUESTIONS', forward),
      app.on('welcome', (m) => this.dispatchEvent(new CustomEvent('welcome', { detail: m })))];
  }

  get clockOffset() { return this.app.serverNow() - epochNow(); }
  serverNow() { return this.app.serverNow(); }
  send(arr) { return this.app.send(arr); }
  sendRaw(arr) { return this.app.send(arr); }
  dispose() { this.undo.forEach((f) => f()); }
}

export function install(app) {
  const THREE = app.THREE;
  const stage = app.world.stages[0];
  const link = new AppLink(app);
  // the narration's way out: panner (direction) → gain (the stage's, to this listener) → the
  // voice mix, or the speakers when the page has no voice (no secure context, no WebCodecs)
  let narration = null; // {ctx, panner, gain, analyser, shared}
  const connectOut = (node, ctx) => {
    const voice = app.voiceAudio?.ctx === ctx ? app.voiceAudio : null;
    const panner = new PannerNode(ctx, {
      panningModel: app.device === 'phone' ? 'equalpower' : 'HRTF', distanceModel: 'linear',
      rolloffFactor: 0, refDistance: 1, maxDistance: 10000,
    });
    const gain = ctx.createGain();
    gain.gain.value = 0;
    const analyser = ctx.createAnalyser();
    analyser.fftSize = 2048;
    node.connect(panner).connect(gain);
    gain.connect(analyser);
    gain.connect(voice ? voice.bus : ctx.destination);
    narration = { ctx, panner, gain, analyser, shared: Boolean(voice) };
  };
  // the narration's gain for this listener, as the server last told it; null (silence) until it
  // does: a new socket is told afresh, so a resumed page starts from silence too
  let stageGain = null;
  const undoStage = [
    app.on('AUDIO_SUBS', (m) => { if (typeof m.stage === 'number') stageGain = m.stage; }),
    app.on('welcome', () => { stageGain = null; }),
  ];
  const player = new BriefingPlayer({ connection: link, audioContext: () => app.voiceAudio?.ctx ?? null, connectOut });
  const slide = new SlideCanvas();
  const texture = new THREE.CanvasTexture(slide.canvas);
  texture.colorSpace = THREE.SRGBColorSpace;
  slide.onChange = () => { texture.needsUpdate = true; };
  let panel = null;
  let panelUi = null;
  const autoOpened = new Set();
  let builtFor = null; // the briefing whose cast stands on the stage
  let shownOnScreen = false;
  const presenters = new Map(); // avatar id -> {group, face, texture}

  // a briefing that is already running: its state over HTTP (the server tells every avatar
  // of the next change anyway); attending is counted from the auditorium zones or a join
  const catchUp = async () => {
    try {
      const { briefings } = await (await fetch('/api/briefings')).json();
      for (const b of briefings) {
        if (player.state) return; // the server has told us of one meanwhile: that one is newer
        if (b.state !== 'live' && b.state !== 'paused') continue;
        const state = await (await fetch(`/api/briefings/${encodeURIComponent(b.id)}`)).json();
        if (player.state) return;
        link.dispatchEvent(new CustomEvent('message', { detail: { type: MsgType.BRIEFING, state } }));
        return;
      }
    } catch { /* no briefings served */ }
  };
  const joined = new Set();
  const attend = () => {
    const id = player.state?.id;
    if (id && !joined.has(id)) { joined.add(id); app.send(briefingJoin(id)); }
  };

  function buildPresenters() {
    for (const p of presenters.values()) app.view.scene.remove(p.group);
    presenters.clear();
    if (!stage) return;
    const y0 = app.world.floors[stage.floor]?.elevation ?? 0;
    player.cast.forEach((c, i) => {
      const spot = (stage.speakers ?? [])[i];
      if (!spot) return;
      const group = new THREE.Group();
      const body = new THREE.Mesh(new THREE.CylinderGeometry(0.25, 0.3, 1.2, 16),
        new THREE.MeshLambertMaterial({ color: 0x1f5d8c }));
      body.position.y = 0.6;
      const face = new PresenterFace();
      const tex = new THREE.CanvasTexture(face.canvas);
      tex.colorSpace = THREE.SRGBColorSpace;
      const head = new THREE.Mesh(new THREE.PlaneGeometry(0.5, 0.5),
        new THREE.MeshBasicMaterial({ map: tex, transparent: true }));
      head.position.y = 1.5;
      group.add(body, head);
      group.position.set(spot.x, y0, spot.z);
      group.rotation.y = spot.yaw ?? 0;
      group.name = `presenter-${c.avatar}`;
      app.view.scene.add(group);
      presenters.set(c.avatar, { group, face, tex });
    });
  }

  const onState = (ev) => {
    const s = ev.detail;
    if (player.cast.length && builtFor !== s.id) {
      builtFor = s.id;
      buildPresenters();
    }
    if (!shownOnScreen && stage) shownOnScreen = app.view.setScreen(stage.id, texture);
    if (s.state === 'live' && !panel && !autoOpened.has(s.id)) {
      autoOpened.add(s.id); // once per briefing: a person who closes it keeps it closed
      panel = app.panel({ title: s.title, onClose: () => { panelUi?.dispose(); panelUi = null; panel = null; } });
      panelUi = new BriefingPanel({ player, root: panel.body });
      panelUi.showState(s);
      // opened by itself: give the keyboard back to walking; using the panel is attending
      panel.returnFocus?.focus?.({ preventScroll: true });
      panel.el.addEventListener('focusin', attend, { once: true });
    }
    player.unlock().catch(() => {});
  };
  player.addEventListener('state', onState);

  const undoWelcome = app.on('welcome', () => { joined.clear(); catchUp(); });
  const undoPick = app.on('pick', (hit) => {
    if (hit.kind !== 'screen' || !player.state) return false;
    attend();
    if (!panel) {
      panel = app.panel({ title: player.state.title, onClose: () => { panelUi?.dispose(); panelUi = null; panel = null; } });
      panelUi = new BriefingPanel({ player, root: panel.body });
      panelUi.showState(player.state);
    }
    player.unlock().catch(() => {});
    return true;
  });

  const undoFrame = app.on('frame', () => {
    const s = player.state;
    if (!s) return;
    const pos = player.position();
    const a = player.at(pos);
    if (a && s.state !== 'scheduled') {
      slide.show(a.segment.slide, { index: a.index, count: player.segments.length, question: s.question, speaker: `${a.segment.role}（${a.segment.name}）` });
    } else {
      slide.show(null, { title: `${s.title}\n${waitingText(s, player.serverNow())}` });
    }
    const mouth = player.mouth(pos);
    for (const [avatar, p] of presenters) {
      const m = mouth && mouth.speaker === avatar ? mouth : { shape: 'X', open: 0 };
      if (p.face.draw(m)) p.tex.needsUpdate = true;
    }
    panelUi?.update(player.caption(pos), pos);
    if (narration && stage) placeNarration(a?.segment?.speaker);
  });

  /** The narration from the speaking presenter's spot, at the gain the server gives this listener. */
  function placeNarration(speaker) {
    const { ctx, panner, gain, shared } = narration;
    const spots = stage.speakers ?? [];
    const spot = spots[Math.max(0, player.cast.findIndex((c) => c.avatar === speaker))] ?? spots[0] ?? stage.screen;
    if (!spot) return;
    const y0 = app.world.floors[stage.floor]?.elevation ?? 0;
    const t = ctx.currentTime;
    panner.positionX.setTargetAtTime(spot.x, t, 0.03);
    panner.positionY.setTargetAtTime(y0 + MOUTH_Y, t, 0.03);
    panner.positionZ.setTargetAtTime(spot.z, t, 0.03);
    const me = app.self();
    const target = stageGain ?? 0;
    if (narration.target !== target) {
      narration.target = target;
      gain.gain.setTargetAtTime(target, t, SMOOTH_S);
    }
    if (!shared && me) {
      // the page's voice places the listener in a shared context; in our own, we do
      const l = ctx.listener;
      const y = (me.y ?? app.world.heightAt(me.floor, me.x, me.z)) + MOUTH_Y;
      const yaw = app.view.cameraYaw;
      if (l.positionX) {
        l.positionX.setTargetAtTime(me.x, t, 0.03);
        l.positionY.setTargetAtTime(y, t, 0.03);
        l.positionZ.setTargetAtTime(me.z, t, 0.03);
        l.forwardX.setTargetAtTime(Math.sin(yaw), t, 0.03);
        l.forwardY.setTargetAtTime(0, t, 0.03);
        l.forwardZ.setTargetAtTime(Math.cos(yaw), t, 0.03);
      } else {
        l.setPosition(me.x, y, me.z);
        l.setOrientation(Math.sin(yaw), 0, Math.cos(yaw), 0, 1, 0);
      }
    }
  }

  /** RMS of the narration after its panner and gain, averaged over `ms` (sampled every 50 ms). */
  async function narrationLevel(ms) {
    if (!narration) return { rms: 0, gain: 0, shared: false, samples: 0 };
    const buf = new Float32Array(narration.analyser.fftSize);
    let sum = 0;
    let n = 0;
    const end = performance.now() + ms;
    while (performance.now() < end) {
      narration.analyser.getFloatTimeDomainData(buf);
      let s = 0;
      for (let i = 0; i < buf.length; i++) s += buf[i] * buf[i];
      sum += Math.sqrt(s / buf.length);
      n += 1;
      await new Promise((r) => setTimeout(r, 50));
    }
    return { rms: sum / n, gain: narration.target ?? 0, shared: narration.shared, samples: n };
  }

  // the person entered with a tap or a key, so the sound may start now; else on the next one
  const unlockOnce = () => player.unlock().catch(() => {});
  window.addEventListener('pointerdown', unlockOnce, { once: true });
  window.addEventListener('keydown', unlockOnce, { once: true });
  catchUp();

  window.emachiBriefing = {
    player,
    position: () => player.position(),
    positionAt: (epochMs) => player.positionAt(epochMs),
    epochNow,
    caption: () => player.caption(),
    slideIndex: () => Number(slide.canvas.dataset.slideIndex ?? -1),
    slideTitle: () => slide.canvas.dataset.slideTitle ?? '',
    screenQuestion: () => slide.canvas.dataset.question ?? '',
    audio: () => player.ctx?.state ?? 'none',
    sounding: () => player.sources.size,
    narrationLevel,
    stageGain: () => stageGain, // the narration's gain the server told this page, or null
    state: () => player.state,
  };

  return () => {
    undoWelcome();
    undoStage.forEach((f) => f());
    undoPick();
    undoFrame();
    player.removeEventListener('state', onState);
    window.removeEventListener('pointerdown', unlockOnce);
    window.removeEventListener('keydown', unlockOnce);
    panelUi?.dispose();
    panel?.dispose();
    for (const p of presenters.values()) {
      app.view.scene.remove(p.group);
      p.group.traverse((o) => { o.geometry?.dispose(); o.material?.dispose(); });
      p.tex.dispose();
    }
    player.dispose();
    narration?.panner.disconnect();
    narration?.gain.disconnect();
    narration = null;
    link.dispose();
    slide.dispose();
    texture.dispose();
    delete window.emachiBriefing;
  };
}

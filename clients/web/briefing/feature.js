// Briefings in the 3D hall: the stage screen shows the slide (a canvas texture), the cast stand
// on the stage's speaker spots and the speaking one's mouth follows the visemes, the narration
// plays in step with every other viewer, and a panel carries captions and the question form.
// The narration is heard on the stage's floor, fully inside the stage and auditorium zones.
// Installed by App.js (features.js); window.emachiBriefing exposes the playback for tests.

import { MsgType, briefingJoin } from '../protocol.js';
import { BriefingPanel, waitingText } from './BriefingPanel.js';
import { BriefingPlayer } from './BriefingPlayer.js';
import { PresenterFace } from './PresenterFace.js';
import { SlideCanvas } from './SlideCanvas.js';

const epochNow = () => performance.timeOrigin + performance.now();
const FLOOR_GAIN = 0.35; // elsewhere on the stage's floor the PA is heard, softer

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
  const player = new BriefingPlayer({ connection: link });
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
    if (player.gain && stage) {
      const me = app.self();
      let g = 0;
      if (me && me.floor === stage.floor) {
        const zone = app.world.zoneAt(me.floor, me.x, me.z);
        g = zone && (zone.id === stage.zone || zone.id === stage.auditorium) ? 1 : FLOOR_GAIN;
      }
      player.gain.gain.setTargetAtTime(g, player.ctx.currentTime, 0.1);
    }
  });

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
    state: () => player.state,
  };

  return () => {
    undoWelcome();
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
    link.dispose();
    slide.dispose();
    texture.dispose();
    delete window.emachiBriefing;
  };
}

// The emachi web client: loads the world, asks for a display name, connects, and runs the frame
// loop (input ticks, prediction, interpolation, rendering, the text alternative).
//
// ## Plugging a feature in (kiosks, briefings, ...)
//
// List a module in features.js (FEATURE_MODULES). It exports `install(app)`, called once after the
// person has entered, before the connection opens (no message is missed); it may return a function
// (or an object with dispose()) that undoes it.
// `app` offers:
//
//   app.on(type, fn) / app.off(type, fn)
//       type is a server message name ('KIOSK_PANEL', 'BRIEFING', ...) or code (MsgType.X): fn(msg)
//       gets the decoded message ({type, name, fields, ...named fields}, see protocol.js);
//       or an app event: 'pick' fn(hit) when a thing or person is tapped/clicked or chosen in the
//       "around you" list (hit = {kind: 'kiosk'|'helper'|'thumbnail'|'counter'|'table'|'screen'|
//       'stairs'|'person', id, label?, procedure?, ...}; return true if you handled it),
//       'near' fn({things, people}) about once a second, 'frame' fn(dt) every frame,
//       'welcome' fn(msg), 'state' fn({state, code?}), 'lang' fn(lang).
//   app.send(msgArray) -> bool       e.g. app.send(protocol.kioskOpen(id, app.lang)); false if offline
//   app.panel({title, onClose}) -> Panel   a card with .body to fill, .setTitle(), .dispose()
//   app.world                       World.js (kiosks, stages, zones..., heightAt, zoneAt, near)
//   app.view                        HallView.js (scene, camera, add(object3d), setScreen(stageId, texture))
//   app.THREE                       the three.js module
//   app.i18n                        t(key, vars), text({ja, en}), add({ja: {...}, en: {...}}), lang
//   app.lang, app.device            'ja' | 'en';  'phone' | 'pc'
//   app.self() -> {id, floor, x, y, z, yaw} | null      the local avatar as drawn
//   app.others() -> [{id, name, floor, x, z, yaw}]       the others as drawn
//   app.serverNow() -> ms           the server's clock (ping/pong estimate), for timelines
//   app.protocol                    protocol.js (MsgType, builders)
//   app.voiceAudio                  {ctx, bus} of the spatial voice (voice/feature.js), when the page
//                                   has voice: a source heard like a voice connects to bus
//   app.setHelloOpt(key, value)     an option of the next hellos (reconnects too); undefined removes it
//   app.beforeConnect(promise)      from install(): the first hello waits for it (at most 3 s), e.g.
//                                   a staff pass fetched first (counters)
//   app.assets                      AssetLoader.js: await app.assets.url(fileNameOrSha256),
//                                   await app.assets.texture(app.THREE, name) (via /api/manifest)
//
// The parts: JoinForm.js (the first screen's form), MessageSwitch.js (what the hall does with each
// server message), NearbyText.js (the text alternative, "周りの様子"), TestHooks.js (window.emachi
// for tests/browser, only on a page opened with ?test=1 or localStorage['emachi.test'] = '1'),
// Wayfinder.js + Guide.js + FloorMap.js (destinations, "take me to" and the information kiosk's
// map), QueuePage.js (the waiting line of a full hall).

import * as THREE from 'three';
import { AssetLoader } from './AssetLoader.js';
import { ChatPanel } from './ChatPanel.js';
import { Connection } from './Connection.js';
import { Controls } from './Controls.js';
import { FEATURE_MODULES } from './features.js';
import { FloorMap } from './FloorMap.js';
import { Guide } from './Guide.js';
import { HallView } from './HallView.js';
import { I18n } from './I18n.js';
import { JoinForm } from './JoinForm.js';
import { LocalPlayer } from './LocalPlayer.js';
import { MessageSwitch } from './MessageSwitch.js';
import { NearbyText } from './NearbyText.js';
import { Panel } from './Panel.js';
import { QueuePage } from './QueuePage.js';
import * as protocol from './protocol.js';
import { CloseCode, MsgType, ack, input, typeName } from './protocol.js';
import { INTERP_DELAY_MS, RemoteCrowd } from './RemoteCrowd.js';
import { SnapshotStore } from './SnapshotStore.js';
import { TestHooks } from './TestHooks.js';
import { Wayfinder } from './Wayfinder.js';
import { World } from './World.js';
import { Avatar } from './Avatar.js';

const ACK_EVERY_MS = 100;
const WALK = 0.6; // intent length when walking (the server's max speed is a run)
const NEAR_EVERY_MS = 1000;
const WORLD_RETRY_MS = 5000;
const HINT_KEY = 'emachi.hint.move';
const FULL_RETRY_MS = 15000; // Connection.js retries a WORLD_FULL close this often

function wrapAngle(a) {
  return Math.atan2(Math.sin(a), Math.cos(a));
}

function sameIntent(a, b) {
  return a && b && Math.abs(a.mx - b.mx) < 1e-3 && Math.abs(a.mz - b.mz) < 1e-3 && Math.abs(a.yaw - b.yaw) < 1e-3;
}

export class App {
  constructor(doc) {
    this.doc = doc;
    this.$ = (sel) => doc.querySelector(sel);
    this.i18n = new I18n();
    this.listeners = new Map();
    this.features = [];
    this.connectAfter = []; // promises the first hello waits for (beforeConnect)
    this.state = 'loading';
    this.avatarId = null;
    this.instance = '';
    this.people = 0;
    this.crowd = 0;
    this.frames = 0;
    this.firstFrameMs = null;
    this.lastAckAt = 0;
    this.lastTick = 0;
    this.lastSent = null;
    this.accum = 0;
    this.nearAt = 0;
    this.device = matchMedia('(pointer: coarse)').matches || navigator.maxTouchPoints > 0 ? 'phone' : 'pc';
    this.assets = new AssetLoader(this.device);
    this.messages = new MessageSwitch([
      [MsgType.WELCOME, () => {}], // handled on the connection's 'welcome' event
      [MsgType.PONG, () => {}], // the connection's clock estimate
      [MsgType.SNAPSHOT, (msg) => this.onSnapshot(msg)],
      [MsgType.CHAT_MSG, (msg) => {
        const who = this.store.people.get(msg.from_id);
        this.chat.add(msg.name, msg.text, { scope: msg.scope, color: who?.color ?? null });
      }],
      [MsgType.ERROR, (msg) => this.chat.add('', `${msg.code}: ${msg.reason}`, { system: true })],
      [MsgType.NOTICE, (msg) => {
        if (msg.kind === 'draining') {
          this.restarting = true;
          this.showBanner(this.i18n.t('msg.restarting'), 'warn');
        } else if (msg.kind === 'queue') {
          this.showQueue(msg.data);
        }
      }],
    ]);
    this.testHooks = TestHooks.enabled() ? new TestHooks(this) : null;
  }

  get lang() {
    return this.i18n.lang;
  }

  // ---- start: world, first frame, the join screen ----

  async start() {
    const doc = this.doc;
    doc.documentElement.lang = this.i18n.lang;
    this.i18n.apply(doc);
    for (const b of doc.querySelectorAll('button.lang')) {
      const fn = () => this.i18n.setLang(this.i18n.lang === 'ja' ? 'en' : 'ja');
      b.addEventListener('click', fn);
    }
    this.i18n.addEventListener('change', () => {
      this.view?.relabel();
      this.$('#help').textContent = this.i18n.t(this.device === 'phone' ? 'help.touch' : 'help.keys');
      if (this.state === 'ready') this.renderFrame();
      this.nearby?.reset();
      this.renderStatus();
      this.emit('lang', this.i18n.lang);
    });
    this.joinForm = new JoinForm(doc, (name) => this.enter(name));
    await this.loadWorld();
  }

  /** Fetch the world and draw the first frame; retried every few seconds while unreachable. */
  async loadWorld() {
    let doc0;
    try {
      const r = await fetch('/api/world');
      if (!r.ok) throw new Error(`GET /api/world: ${r.status}`);
      doc0 = await r.json();
    } catch (e) {
      this.showBanner(this.i18n.t('msg.unreachable', { s: WORLD_RETRY_MS / 1000 }), 'bad');
      this.worldRetry = setTimeout(() => this.loadWorld(), WORLD_RETRY_MS);
      return;
    }
    this.world = new World(doc0);
    this.view = new HallView(this.$('#view'), this.world, { lang: () => this.i18n.lang });
    const spawn = this.world.spawns[0] ?? { floor: 0, x: 0, z: 0, yaw: 0 };
    this.view.cameraYaw = spawn.yaw ?? 0;
    this.view.follow(spawn.x, this.world.heightAt(spawn.floor, spawn.x, spawn.z), spawn.z, spawn.floor);
    this.renderFrame();
    this.state = 'ready';
    this.joinForm.focus();
    // before entering, redraw only on resize (no loop: a phone on the first screen stays cool)
    this.idleResize = () => { if (this.state === 'ready') this.renderFrame(); };
    window.addEventListener('resize', this.idleResize);
  }

  renderFrame() {
    this.view.render();
    this.frames += 1;
    if (this.firstFrameMs === null) {
      this.firstFrameMs = performance.now();
      performance.mark('emachi-first-frame');
    }
  }

  // ---- entering: connection, avatar, controls, features ----

  enter(name) {
    this.name = name;
    this.joinForm.hide();
    for (const id of ['#status', '#chat', '#nearby', '#help']) this.$(id).hidden = false;
    if (this.device === 'phone' || window.innerWidth < 600) this.$('#joystick').hidden = false;
    this.doc.body.classList.toggle('phone', this.device === 'phone');
    this.wayfinder = new Wayfinder(this.world);
    this.guide = new Guide({
      view: this.view, world: this.world, wayfinder: this.wayfinder, i18n: this.i18n, live: this.$('#guide-live'),
      // arrived: turn the view to what one came for (a kiosk, a counter), as a person would
      onArrive: (dest) => { if (dest.face !== undefined) this.cameraTarget = dest.face; },
    });
    this.queue = new QueuePage(this.doc, this.i18n);
    // a tab that closes says so (a clean close frees its place at once; a reload resumes it)
    this.onPageHide = () => this.conn?.close();
    this.onPageShow = (e) => { if (e.persisted && this.conn && !this.conn.ws) this.conn.open(); };
    window.addEventListener('pagehide', this.onPageHide);
    window.addEventListener('pageshow', this.onPageShow);
    this.$('#help').textContent = this.i18n.t(this.device === 'phone' ? 'help.touch' : 'help.keys');
    this.store = new SnapshotStore();
    this.remote = new RemoteCrowd(this.view.avatarLayer, this.world);
    this.controls = new Controls(this.view.renderer.domElement, this.$('#joystick'), {
      onPick: (x, y) => this.pickAt(x, y),
    });
    this.chat = new ChatPanel(this.$('#chat'), (m) => this.send(m));
    this.nearby = new NearbyText(this.$('#nearby'), this.$('#nearby-live'), {
      world: this.world, i18n: this.i18n, onChoose: (hit) => this.choose(hit), onMap: () => this.openMap(),
      compact: this.device === 'phone',
    });
    this.conn = new Connection({ name, opts: this.helloOpts() });
    this.conn.addEventListener('welcome', (e) => this.onWelcome(e.detail));
    this.conn.addEventListener('message', (e) => this.onMessage(e.detail));
    this.conn.addEventListener('state', (e) => this.onState(e.detail));
    this.$('#banner-retry').addEventListener('click', () => this.conn.retryNow());
    this.state = 'connecting';
    // features first: a message sent at the join (an event's state) must not arrive before the
    // feature that shows it is listening
    this.installFeatures()
      .then(() => Promise.race([Promise.allSettled(this.connectAfter), new Promise((r) => setTimeout(r, 3000))]))
      .then(() => { if (this.conn && !this.conn.ws && !this.conn.closedByUs) this.conn.open(); });
    this.lastFrame = performance.now();
    const loop = (t) => {
      this.raf = requestAnimationFrame(loop);
      this.frame(t);
    };
    this.raf = requestAnimationFrame(loop);
    this.tickTimer = setInterval(() => this.ticks(), 10);
  }

  /** A hello option for the next connects (a feature's: the counters' staff pass). */
  setHelloOpt(key, value) {
    if (!this.conn) return;
    if (value === undefined) delete this.conn.opts[key];
    else this.conn.opts[key] = value;
  }

  /** Called from a feature's install(): the first hello waits for `promise` (3 s at most). */
  beforeConnect(promise) {
    this.connectAfter.push(Promise.resolve(promise));
  }

  async installFeatures() {
    // fetched together, installed in the listed order
    const loads = FEATURE_MODULES.map((path) => import(path).catch((e) => e));
    for (const [i, load] of loads.entries()) {
      const mod = await load;
      try {
        if (mod instanceof Error) throw mod;
        const undo = mod.install?.(this);
        if (undo) this.features.push(undo);
      } catch (e) {
        console.warn(`emachi: feature ${FEATURE_MODULES[i]} not installed: ${e.message}`);
      }
    }
  }

  /**
   * HELLO options from the page's address: `?invite=TOKEN` (an event's invitation),
   * `?briefing=ID` (join a briefing's audience). Viewers without an avatar use briefing/watch.html.
   */
  helloOpts() {
    const q = new URLSearchParams(location.search);
    const opts = { mode: 'avatar' };
    if (q.get('invite')) opts.invite = q.get('invite').slice(0, 256);
    if (q.get('event')) opts.event = q.get('event').slice(0, 64);
    if (q.get('briefing')) opts.briefing = q.get('briefing').slice(0, 64);
    // staff who signed in to a console in this tab (briefing/staff.js) get the megaphone
    try { if (sessionStorage.getItem('emachi.staff')) opts.staff = sessionStorage.getItem('emachi.staff').slice(0, 256); } catch { /* private mode */ }
    opts.device = deviceId(); // a random id kept in this browser: a moderator's ban holds it, nothing personal
    return opts;
  }

  onWelcome(msg) {
    const resumed = this.avatarId === msg.avatar_id && this.instance === msg.instance;
    // after a restart, say what really happened to the avatar (the server may or may not have
    // kept it): the banner while away promises nothing about it
    this.backFrom = this.restarting ? (resumed ? 'msg.back.kept' : 'msg.back.new') : null;
    this.avatarId = msg.avatar_id;
    this.instance = msg.instance;
    this.tickRate = msg.tick_rate;
    this.store.reset();
    this.remote.selfId = msg.avatar_id;
    if (!this.player) {
      this.player = new LocalPlayer(this.world, msg.tick_rate);
    } else if (!resumed) {
      this.player.known = false;
    }
    this.player.resetPending();
    this.lastSent = null;
    if (!this.selfAvatar || !resumed) {
      this.selfAvatar?.dispose();
      this.selfAvatar = new Avatar(msg.avatar_id, this.name, 0x2f9e6a, true);
      this.selfAvatar.group.visible = false;
      this.view.avatarLayer.add(this.selfAvatar.group);
    }
    this.queue?.hide();
    this.waiting = false;
    this.emit('welcome', msg);
  }

  /** The hall is full: the waiting page (data from NOTICE queue, or {retryMs} after a refusal). */
  showQueue(data) {
    this.waiting = true;
    this.hideBanner();
    this.queue.show(data);
    this.renderStatus();
  }

  /** A first-visit hint on a phone: how to walk (until the stick is used or it is dismissed). */
  showMoveHint() {
    if (this.device !== 'phone' || this.hint) return;
    try { if (localStorage.getItem(HINT_KEY)) return; } catch { /* private mode: show it */ }
    const el = document.createElement('section');
    el.className = 'panel hint';
    el.setAttribute('role', 'note');
    const p = document.createElement('p');
    p.textContent = this.i18n.t('hint.phone');
    const ok = document.createElement('button');
    ok.type = 'button';
    ok.textContent = this.i18n.t('hint.ok');
    ok.addEventListener('click', () => this.hideMoveHint());
    el.append(p, ok);
    this.$('#panels').append(el);
    this.hint = el;
  }

  hideMoveHint() {
    if (!this.hint) return;
    this.hint.remove();
    this.hint = null;
    try { localStorage.setItem(HINT_KEY, '1'); } catch { /* private mode */ }
  }

  /** The information kiosk's floor map and destinations (toggles). */
  openMap() {
    if (this.floorMap?.open) {
      this.floorMap.dispose();
      return null;
    }
    this.floorMap = new FloorMap(this);
    return this.floorMap;
  }

  /** "Take me to": walk the own avatar to a destination of the Wayfinder; false when there is no way. */
  takeMeTo(id) {
    const dest = this.wayfinder?.destination(id);
    const me = this.self();
    if (!dest || !me) return false;
    return this.guide.start(me, dest);
  }

  onState(detail) {
    this.state = detail.state;
    const t = (k, v) => this.i18n.t(k, v);
    if (detail.state === 'connected') {
      this.restarting = false;
      clearTimeout(this.backTimer);
      if (this.backFrom) {
        this.showBanner(t(this.backFrom), 'warn');
        this.backTimer = setTimeout(() => this.hideBanner(), 8000);
        this.backFrom = null;
      } else {
        this.hideBanner();
      }
    } else if (detail.state === 'reconnecting') {
      const s = Math.max(1, Math.round((detail.retryIn ?? 1000) / 1000));
      // after a restart notice, the failed attempts while the server is away are part of it
      if (detail.code === CloseCode.DRAINING) this.restarting = true;
      if (detail.code === CloseCode.WORLD_FULL) this.showQueue({ retryMs: detail.retryIn ?? FULL_RETRY_MS });
      else if (this.restarting) this.showBanner(t('msg.restarting'), 'warn', detail.code !== CloseCode.DRAINING);
      else if (detail.unreachable) this.showBanner(t('msg.unreachable', { s }), 'bad', true);
      else this.showBanner(t('msg.lost'), 'warn', true);
    } else if (detail.state === 'closed') {
      const key = {
        [CloseCode.REPLACED]: 'msg.replaced', [CloseCode.REMOVED]: 'msg.removed',
        [CloseCode.UNSUPPORTED_VERSION]: 'msg.version', [CloseCode.UNAUTHORIZED]: 'msg.unauthorized',
        [CloseCode.INVITE_INVALID]: 'msg.invite.invalid', [CloseCode.INVITE_EXPIRED]: 'msg.invite.expired',
        [CloseCode.INVITE_REVOKED]: 'msg.invite.revoked', [CloseCode.INVITE_OTHER_EVENT]: 'msg.invite.other',
        [CloseCode.INVITE_USED]: 'msg.invite.used', [CloseCode.EVENT_FULL]: 'msg.event.full',
        [CloseCode.EVENT_NOT_STARTED]: 'msg.event.early', [CloseCode.EVENT_OVER]: 'msg.event.over',
        [CloseCode.EVENT_LOCKED]: 'msg.event.locked', [CloseCode.BANNED]: 'msg.banned',
      }[detail.code];
      // a host's own words (a removal's reason) come after the plain sentence
      const why = detail.code === CloseCode.REMOVED && detail.reason && detail.reason !== 'removed by the host'
        ? ` (${detail.reason})` : '';
      if (key) this.showBanner(t(key) + why, 'bad');
    }
    this.renderStatus();
    this.emit('state', detail);
  }

  onMessage(msg) {
    this.messages.handle(msg);
    this.emit(msg.type, msg);
  }

  onSnapshot(msg) {
    const state = this.store.apply(msg);
    if (!state) return;
    this.ackTick = msg.tick;
    const own = state.get(this.avatarId);
    if (own && this.player) {
      const first = !this.player.known;
      this.player.reconcile(own, msg.last_seq);
      if (first) {
        // enter facing into the hall, with the camera behind: the server's spawn yaw decides
        this.view.cameraYaw = this.player.yaw;
        this.showMoveHint();
      }
      this.selfAvatar.group.visible = true;
      const me = this.store.people.get(this.avatarId);
      if (me && me.color !== this.selfAvatar.color) this.selfAvatar.setColor(me.color);
    }
    this.remote.push(msg.server_time, state, this.store.people);
    const others = state.size - (own ? 1 : 0);
    if (others + 1 !== this.people || Math.max(0, msg.crowd) !== this.crowd) {
      this.people = others + 1;
      this.crowd = Math.max(0, msg.crowd);
      this.renderStatus();
    }
  }

  send(arr) {
    return this.conn ? this.conn.send(arr) : false;
  }

  // ---- the frame: input ticks, prediction, camera, render ----

  frame(t) {
    const dt = Math.min(0.25, (t - this.lastFrame) / 1000);
    this.lastFrame = t;
    const look = this.controls.takeLook();
    const v = this.view;
    const turn = this.controls.turn(dt);
    if (look.yaw || turn) this.cameraTarget = null;
    v.cameraYaw += look.yaw + turn;
    if (this.cameraTarget != null) {
      const d = wrapAngle(this.cameraTarget - v.cameraYaw);
      v.cameraYaw += d * Math.min(1, dt * 4);
      if (Math.abs(d) < 0.01) this.cameraTarget = null;
    }
    v.cameraPitch = Math.max(0.05, Math.min(1.2, v.cameraPitch + look.pitch));
    v.cameraDistance = Math.max(2.5, Math.min(16, v.cameraDistance + look.zoom * 0.8));
    this.ticks();
    if (this.player?.known) {
      this.player.fade(dt);
      const me = this.player.shown(Math.min(1, this.accum * (this.tickRate || 20)));
      this.selfAvatar.place(me.x, me.y, me.z, me.yaw);
      this.selfAvatar.animate(dt);
      if (this.guide?.active && Math.hypot(this.player.intentX, this.player.intentZ) > 0.1) {
        v.cameraYaw += wrapAngle(me.yaw - v.cameraYaw) * Math.min(1, dt * 1.5);
      }
      v.follow(me.x, me.y, me.z, me.floor);
    }
    if (this.conn) this.remote.update(this.conn.serverNow() - INTERP_DELAY_MS, dt, v.camera.position);
    this.renderFrame();
    this.emit('frame', dt);
    if (t - this.nearAt > NEAR_EVERY_MS) {
      this.nearAt = t;
      this.updateNear();
    }
  }

  /**
   * Run the input ticks that are due (fixed steps at the server's tick rate). Called by a timer
   * and by every frame, so that ticks stay regular when frames are slow or uneven.
   */
  ticks() {
    const now = performance.now();
    const elapsed = Math.min(0.25, (now - (this.lastTickAt ?? now)) / 1000);
    this.lastTickAt = now;
    if (!this.player || this.state !== 'connected') return;
    const tick = 1 / (this.tickRate || 20);
    this.accum = Math.min(this.accum + elapsed, tick * 5);
    while (this.accum >= tick) {
      this.accum -= tick;
      this.inputTick();
    }
    if (now - this.lastAckAt > ACK_EVERY_MS && this.ackTick) {
      this.send(ack(this.ackTick));
      this.lastAckAt = now;
    }
  }

  inputTick() {
    // before the server has placed the avatar an input would only turn it round (to yaw 0)
    if (!this.player.known) return;
    const [sx, sf] = this.controls.intent();
    const manual = Math.hypot(sx, sf) > 0;
    if (manual) this.hideMoveHint();
    if (manual && this.guide?.active) this.guide.cancel();
    if (manual) this.cameraTarget = null;
    const guided = manual ? null : this.guide?.intent(this.player.shown());
    const cy = this.view.cameraYaw;
    const run = this.controls.keys.has('ShiftLeft') || this.controls.keys.has('ShiftRight');
    const k = manual && this.controls.stick.pointer === null ? (run ? 1 : WALK) : 1;
    // camera forward is (sin cy, cos cy); its right hand is (-cos cy, sin cy)
    const mx = guided ? guided.mx : (Math.sin(cy) * sf - Math.cos(cy) * sx) * k;
    const mz = guided ? guided.mz : (Math.cos(cy) * sf + Math.sin(cy) * sx) * k;
    const moving = Math.hypot(mx, mz) > 1e-3;
    const yaw = moving ? Math.atan2(mx, mz) : (guided?.yaw ?? this.player.yaw);
    const intent = { mx: moving ? mx : 0, mz: moving ? mz : 0, yaw };
    if (!moving && sameIntent(intent, this.lastSent)) return;
    const inp = this.player.step(intent.mx, intent.mz, intent.yaw);
    this.send(input(inp.seq, this.ackTick ?? 0, inp.mx, inp.mz, inp.yaw));
    this.lastAckAt = performance.now();
    this.lastSent = intent;
  }

  // ---- picking and the text alternative ----

  pickAt(x, y) {
    const hit = this.view.pick(x, y, this.remote.objects());
    if (hit) this.choose(hit);
  }

  choose(hit) {
    if (hit.kind === 'info') {
      if (!this.floorMap?.open) this.openMap();
      return;
    }
    if (this.emit('pick', hit)) return;
    const t = (k, v) => this.i18n.t(k, v);
    const title = hit.kind === 'person' ? t('panel.person', { name: hit.name }) : this.i18n.text(hit.label) || t(`kind.${hit.kind}`);
    const panel = this.panel({ title });
    const p = document.createElement('p');
    p.textContent = hit.kind === 'counter' && hit.section ? `${t('kind.counter')}: ${hit.section}` : t(`kind.${hit.kind}`);
    panel.body.append(p);
  }

  panel(options) {
    return new Panel(this.$('#panels'), { closeLabel: this.i18n.t('close'), ...options });
  }

  updateNear() {
    if (!this.player?.known) return;
    const near = this.nearby.update(this.player.shown(), this.remote.positions(), {
      yaw: this.view.cameraYaw, inView: Math.max(0, this.people - 1), beyond: this.crowd,
    });
    this.emit('near', near);
  }

  // ---- status line and banner ----

  renderStatus() {
    const el = this.$('#status');
    if (!el) return;
    const t = (k, v) => this.i18n.t(k, v);
    const key = this.waiting && this.state !== 'connected' ? 'waiting' : ['connected', 'reconnecting', 'closed'].includes(this.state) ? this.state : 'connecting';
    el.dataset.state = key;
    const parts = [t(`status.${key}`)];
    if (this.instance && !this.waiting) parts.push(`${t('status.instance')} ${this.instance.split('#').pop()}`);
    const text = parts.join(' · ');
    if (this.$('#status-text').textContent !== text) this.$('#status-text').textContent = text;
    // the count in words, outside the live status (it changes every few seconds in a crowd)
    const n = Math.max(0, this.people - 1);
    const count = this.state !== 'connected' ? '' : n === 0 && !this.crowd ? t('count.none')
      : this.crowd ? t('count.beyond', { n, m: this.crowd }) : t('count.near', { n });
    const c = this.$('#status-count');
    if (c && c.textContent !== count) c.textContent = count;
  }

  showBanner(text, level = 'warn', retry = false) {
    const b = this.$('#banner');
    b.hidden = false;
    this.doc.body.classList.add('banner');
    b.dataset.level = level;
    this.$('#banner-text').textContent = text;
    this.$('#banner-retry').hidden = !retry;
  }

  hideBanner() {
    this.$('#banner').hidden = true;
    this.doc.body.classList.remove('banner');
  }

  // ---- the feature API ----

  on(type, fn) {
    const key = typeof type === 'string' && type in MsgType ? MsgType[type] : type;
    if (!this.listeners.has(key)) this.listeners.set(key, new Set());
    this.listeners.get(key).add(fn);
    return () => this.off(type, fn);
  }

  off(type, fn) {
    const key = typeof type === 'string' && type in MsgType ? MsgType[type] : type;
    this.listeners.get(key)?.delete(fn);
  }

  /** Call the listeners of a type; true when one of them returned true (handled). */
  emit(type, arg) {
    let handled = false;
    for (const fn of this.listeners.get(type) ?? []) {
      try {
        if (fn(arg) === true) handled = true;
      } catch (e) {
        console.error(`emachi: listener for ${typeName(type) ?? type} failed`, e);
      }
    }
    return handled;
  }

  self() {
    if (!this.player?.known) return null;
    return { id: this.avatarId, ...this.player.shown() };
  }

  others() {
    return this.remote ? this.remote.positions() : [];
  }

  serverNow() {
    return this.conn ? this.conn.serverNow() : Date.now();
  }

  get THREE() {
    return THREE;
  }

  get protocol() {
    return protocol;
  }

  dispose() {
    cancelAnimationFrame(this.raf);
    clearInterval(this.tickTimer);
    clearTimeout(this.worldRetry);
    for (const f of this.features) (typeof f === 'function' ? f : f.dispose?.bind(f))?.();
    this.features = [];
    window.removeEventListener('resize', this.idleResize);
    window.removeEventListener('pagehide', this.onPageHide);
    window.removeEventListener('pageshow', this.onPageShow);
    this.floorMap?.dispose();
    this.guide?.dispose();
    this.queue?.dispose();
    this.hint?.remove();
    this.conn?.dispose();
    this.controls?.dispose();
    this.joinForm?.dispose();
    this.nearby?.dispose();
    this.chat?.dispose();
    this.remote?.dispose();
    this.selfAvatar?.dispose();
    this.player?.dispose();
    this.store?.dispose();
    this.view?.dispose();
    this.world?.dispose();
    this.assets.dispose();
    this.messages.dispose();
    this.testHooks?.dispose();
    this.listeners.clear();
  }
}

const DEVICE_KEY = 'emachi.device';

/** This browser's random device id (16 bytes, hex), made once. */
function deviceId() {
  try {
    let id = localStorage.getItem(DEVICE_KEY);
    if (!id || !/^[0-9a-f]{32}$/.test(id)) {
      id = Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('');
      localStorage.setItem(DEVICE_KEY, id);
    }
    return id;
  } catch {
    return undefined; // private mode: no id
  }
}

// Spatial voice in the hall (docs/voice.md): the server decides who hears whom; this page
// captures, encodes and sends the microphone while the person talks, and plays each voice it is
// subscribed to from where that person stands, at the server's gain times this person's own
// volume for them. Installed by App.js (features.js). window.emachiVoice is for the tests.
//
// Talking = microphone on, not muted, and (open mic, or push-to-talk held: Space on a PC, the
// button on a phone). The mix plays through EchoSafeOutput once the microphone is on.

import { EchoSafeOutput } from './EchoSafeOutput.js';
import { Microphone } from './Microphone.js';
import { PushToTalk } from './PushToTalk.js';
import { SpeakingBadges } from './SpeakingBadges.js';
import { VoiceCodecs } from './VoiceCodecs.js';
import { VOICE_STRINGS } from './strings.js';
import { VoicePanel } from './VoicePanel.js';
import { VoicePrefs } from './VoicePrefs.js';
import { VoiceReceiver } from './VoiceReceiver.js';
import { WebSocketTransport } from './WebSocketTransport.js';

const UI_EVERY_MS = 200;
const NEAR_LIST_M = 15;
const HEARD_NAMES = 5;
const WHY_KEY = 'emachi.voice.asked';

function asked() {
  try { return sessionStorage.getItem(WHY_KEY) === '1'; } catch { return false; }
}

export function install(app) {
  const doc = document;
  const t = (k, v) => app.i18n.t(k, v);
  app.i18n.add(VOICE_STRINGS);
  const css = Object.assign(doc.createElement('link'), { rel: 'stylesheet', href: '/client/voice/voice.css' });
  doc.head.append(css);
  const test = window.emachiVoiceTest ?? {};
  const prefs = new VoicePrefs();
  const staffToken = (() => { try { return sessionStorage.getItem('emachi.staff'); } catch { return null; } })();
  const nameOf = (id) => (id === app.avatarId ? app.name : app.store?.people.get(id)?.name ?? '');

  const canListen = window.isSecureContext && typeof AudioDecoder === 'function' && typeof AudioWorkletNode === 'function';
  const state = {
    mic: Microphone.unavailable() ?? 'off', reason: '', mode: prefs.mode, muted: false, talking: false,
    mega: false, megaAllowed: Boolean(staffToken), hint: true, reach: '', heard: '',
  };
  let ctx = null;
  let codecs = null;
  let output = null;
  let receiver = null;
  let mic = null;
  let heard = null; // {count, ids} from VOICE_HEARD
  let pttHeld = false;
  let peopleOpen = false;

  if (canListen) {
    ctx = new AudioContext({ sampleRate: 48000, latencyHint: 'interactive' });
    codecs = new VoiceCodecs();
    codecs.onPacket = (seq, data) => {
      if (state.talking) transport.sendFrame(seq, true, state.mega && state.megaAllowed, data);
    };
    output = new EchoSafeOutput(ctx, { doc });
    receiver = new VoiceReceiver({
      ctx, codecs, transport: new WebSocketTransport(app), output: output.input,
      spatial: true, hrtf: app.device !== 'phone', ownGain: (id) => prefs.gainFor(nameOf(id)),
    });
    // other sources heard like a voice (the briefing's narration, from the stage) join the mix
    app.voiceAudio = { ctx, bus: receiver.bus };
  }
  const transport = new WebSocketTransport(app);
  transport.onHeard((m) => { heard = m; refresh(); });
  const unlock = () => { if (ctx && ctx.state !== 'running') ctx.resume().catch(() => {}); };
  window.addEventListener('pointerdown', unlock);
  window.addEventListener('keydown', unlock);
  unlock();

  function setTalking() {
    const talking = state.mic === 'on' && !state.muted && (state.mode === 'open' || pttHeld);
    mic?.setTransmit(talking, state.mode === 'open');
    if (talking === state.talking) return;
    state.talking = talking;
    if (!talking) {
      heard = null;
      // tell the server at once, rather than after its 1 s of silence
      transport.sendFrame(0, false, false, new Uint8Array(0));
    }
    refresh();
  }

  async function micOn() {
    state.mic = 'asking';
    refresh();
    unlock();
    const m = new Microphone(ctx, { processing: test.processing !== false, codecs });
    try {
      await m.start();
    } catch (e) {
      m.dispose();
      state.mic = e.kind ?? 'failed';
      state.reason = e.message;
      refresh();
      return;
    }
    try { sessionStorage.setItem(WHY_KEY, '1'); } catch { /* private mode */ }
    mic = m;
    state.mic = 'on';
    state.hint = true;
    output.startLoopback();
    setTalking();
    refresh();
  }

  function micOff() {
    pttHeld = false;
    setTalking();
    mic?.dispose();
    mic = null;
    state.mic = 'off';
    state.talking = false;
    refresh();
  }

  const panel = new VoicePanel(doc.body, {
    t,
    device: app.device,
    handlers: {
      onMic: () => {
        if (state.mic === 'on') micOff();
        else if (!ctx || Microphone.unavailable()) refresh();
        else if (asked()) micOn();
        else { state.mic = 'why'; refresh(); panel.allow.focus(); }
      },
      onAllow: () => micOn(),
      onCancel: () => { state.mic = 'off'; refresh(); panel.mic.focus(); },
      onMode: (mode) => { state.mode = mode; prefs.setMode(mode); setTalking(); refresh(); },
      onMute: () => { state.muted = !state.muted; setTalking(); refresh(); },
      onMega: () => { state.mega = !state.mega; refresh(); },
      onHint: () => { state.hint = false; refresh(); },
      onPeople: (open) => { peopleOpen = open; refreshPeople(); },
      onPerson: (id, name, change) => {
        prefs.setPerson(name, change);
        receiver?.refreshOwnGains();
        refreshPeople();
      },
    },
  });
  const ptt = new PushToTalk(panel.ptt, (held) => {
    pttHeld = held && state.mic === 'on' && state.mode === 'ptt';
    setTalking();
  });

  const live = Object.assign(doc.createElement('p'), { id: 'voice-speaking', hidden: true });
  live.setAttribute('aria-live', 'polite');
  (doc.querySelector('#nearby') ?? doc.body).append(live);
  const badges = new SpeakingBadges({
    THREE: app.THREE, live, t, nameOf,
    groupOf: (id) => (id === app.avatarId ? app.selfAvatar?.group : app.remote?.avatars.get(id)?.avatar.group) ?? null,
  });

  function reachKey() {
    if (state.mega && state.megaAllowed) return 'voice.reach.mega';
    const me = app.self();
    const zone = me && app.world.zoneAt(me.floor, me.x, me.z);
    return { isolated: 'voice.reach.isolated', quiet: 'voice.reach.quiet', stage: 'voice.reach.stage' }[zone?.audio] ?? 'voice.reach.open';
  }

  function refresh() {
    state.reach = state.mic === 'on' ? t(reachKey()) : '';
    if (state.talking && heard) {
      const names = heard.ids.map(nameOf).filter(Boolean);
      const list = names.slice(0, HEARD_NAMES).join(t('voice.sep')) + (heard.count > HEARD_NAMES ? '…' : '');
      state.heard = heard.count ? t('voice.heard.some', { list: list || '—', n: heard.count }) : t('voice.heard.none');
    } else {
      state.heard = '';
    }
    panel.render(state);
  }

  function refreshPeople() {
    if (!peopleOpen) return;
    const me = app.self();
    const near = me ? app.others()
      .filter((o) => o.floor === me.floor && Math.hypot(o.x - me.x, o.z - me.z) <= NEAR_LIST_M)
      .sort((a, b) => Math.hypot(a.x - me.x, a.z - me.z) - Math.hypot(b.x - me.x, b.z - me.z)) : [];
    // heard first, then the nearest; in id order, so the rows stay put while people move
    const ids = [...new Set([...(receiver ? receiver.subs.keys() : []), ...near.map((o) => o.id)])]
      .slice(0, 16).sort((x, y) => x - y);
    const speaking = new Set(receiver?.speaking() ?? []);
    panel.renderPeople(ids.map((id) => {
      const name = nameOf(id) || `#${id}`;
      return { id, name, ...prefs.person(name), speaking: speaking.has(id) };
    }));
  }

  // the indicators on a timer of their own: a page that draws slowly still shows who speaks
  const uiTimer = setInterval(() => {
    const speaking = receiver ? receiver.speaking() : [];
    if (mic?.audible && app.avatarId !== null) speaking.push(app.avatarId);
    badges.update(speaking);
    refresh();
    refreshPeople();
  }, UI_EVERY_MS);
  const undo = [
    app.on('frame', () => {
      const me = app.self();
      if (receiver && me) {
        const byId = new Map(app.others().map((o) => [o.id, o]));
        receiver.place({ x: me.x, y: me.y ?? app.world.heightAt(me.floor, me.x, me.z), z: me.z, yaw: app.view.cameraYaw }, (id) => {
          const o = byId.get(id);
          return o && o.floor === me.floor ? { x: o.x, y: app.world.heightAt(o.floor, o.x, o.z), z: o.z } : null;
        });
      }
    }),
    app.on('welcome', () => { receiver?.reset(); heard = null; }),
    app.on('lang', () => { badges.relabel(); refresh(); refreshPeople(); }),
  ];
  refresh();

  window.emachiVoice = {
    state: () => ({
      mic: state.mic, mode: state.mode, muted: state.muted, talking: state.talking,
      route: output?.route ?? 'none', context: ctx?.state ?? 'none', sampleRate: ctx?.sampleRate ?? 0,
      subs: Object.fromEntries(receiver?.subs ?? []), heard, framesIn: receiver?.framesIn ?? 0,
      framesBy: Object.fromEntries(receiver?.framesBy ?? []),
      sent: codecs?.stats.sent ?? 0, captured: codecs?.stats.captured ?? 0,
      encodeQueue: codecs?.stats.encodeQueue ?? 0, encoderError: codecs?.stats.encoderError ?? null,
      device: mic?.settings ?? null, speakingText: live.textContent,
      channels: Object.fromEntries([...(receiver?.channels ?? [])].map(([id, c]) => [id, {
        decoded: codecs.stats.decoded[id] ?? 0, errors: codecs.stats.errors[id] ?? 0,
        decodeQueue: codecs.stats.queued[id] ?? 0, targetMs: c.targetMs, stats: c.stats,
      }])),
    }),
    measure: (ms, freqs) => receiver.measure(ms, freqs),
    outputLevel: () => output?.level() ?? null,
  };

  return () => {
    clearInterval(uiTimer);
    for (const f of undo) f();
    window.removeEventListener('pointerdown', unlock);
    window.removeEventListener('keydown', unlock);
    ptt.dispose();
    mic?.dispose();
    badges.dispose();
    live.remove();
    panel.dispose();
    transport.dispose();
    receiver?.dispose();
    output?.dispose();
    if (app.voiceAudio?.ctx === ctx) delete app.voiceAudio;
    ctx?.close();
    css.remove();
    delete window.emachiVoice;
  };
}

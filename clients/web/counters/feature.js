// Service counters in the hall (issue 13, docs/counters.md): each counter's status board in 3D and
// its status in the text alternative; walking up to an open counter offers a ticket (and a booking
// code's entry); the ticket card with the position and the wait, live; the call (a notice, a short
// sound, the way back) and the booth (who one is with, the booth's screen, a handed link and its
// QR code). Staff pages (the staff token in this tab, or the server's word that this is a staff
// session) get the desk. The server decides everything: the client sends COUNTER actions and
// draws COUNTER_STATE. Installed by App.js (features.js); window.emachiCounters is for tests.

import { bi } from '../kiosk/bilingual.js';
import { BoothPanel } from './BoothPanel.js';
import { DeskPanel } from './DeskPanel.js';
import { StatusSigns } from './StatusSigns.js';
import { S, both, fmt, look, minutes } from './strings.js';
import { TicketCard } from './TicketCard.js';

const COUNTER = 14; // client -> server (docs/counters.md); protocol.js names it COUNTER
const COUNTER_STATE = 48; // server -> client
const OUR_ERRORS = /^(counter_|ticket_|code_|slot_|not_called|booth_|desk_|duty_|screen_|link_|call_|queue_)/;
const BADGE_Y = 2.32; // just over the name tag (Avatar.js TAG_HEIGHT 2.05)
const SELF_BADGE_Y = 2.86; // over one's own green marker

/** Two short rising tones (Web Audio, no asset): "your turn". */
function beep(ctx) {
  if (!ctx) return false;
  if (ctx.state !== 'running') ctx.resume().catch(() => {});
  const t0 = ctx.currentTime + 0.02;
  for (const [i, f] of [660, 880].entries()) {
    const o = ctx.createOscillator();
    const g = ctx.createGain();
    o.type = 'sine';
    o.frequency.value = f;
    const t = t0 + i * 0.22;
    g.gain.setValueAtTime(0.0001, t);
    g.gain.exponentialRampToValueAtTime(0.25, t + 0.02);
    g.gain.exponentialRampToValueAtTime(0.0001, t + 0.18);
    o.connect(g).connect(ctx.destination);
    o.start(t);
    o.stop(t + 0.2);
  }
  return true;
}

function badgeTexture(THREE) {
  const c = document.createElement('canvas');
  c.width = 192;
  c.height = 56;
  const g = c.getContext('2d');
  g.fillStyle = '#1f5d8c';
  g.beginPath();
  g.roundRect(0, 0, 192, 56, 16);
  g.fill();
  g.fillStyle = '#fff';
  g.font = '700 30px "Noto Sans CJK JP", "Noto Sans JP", sans-serif';
  g.textAlign = 'center';
  g.textBaseline = 'middle';
  g.fillText(`${S.badge.ja} ${S.badge.en}`, 96, 30, 180);
  const tex = new THREE.CanvasTexture(c);
  tex.colorSpace = THREE.SRGBColorSpace;
  return tex;
}

const PASS_KEY = 'emachi.staff.hall'; // localStorage: this browser's staff account got a pass here before

/**
 * A staff member signed in with an account (the Path=/staff cookie never reaches /ws): fetch a
 * 2-minute pass from /staff/counters/pass and send it in the hello (`opts.staff_pass`), renewed
 * while the page is open so that a reconnect is still staff. Asked only with a hint that this is
 * staff (`?staff` in the address, or a pass given in this browser before): a resident's page never
 * calls a /staff address. Not with the shared token in the tab (App.js sends it as `opts.staff`).
 */
function staffPass(app, staffToken) {
  let given = false;
  let timer = null;
  const remembered = () => { try { return localStorage.getItem(PASS_KEY) === '1'; } catch { return false; } };
  const remember = (yes) => { try { if (yes) localStorage.setItem(PASS_KEY, '1'); else localStorage.removeItem(PASS_KEY); } catch { /* private mode */ } };
  const wanted = !staffToken && (new URLSearchParams(location.search).has('staff') || remembered());
  async function fetchPass() {
    try {
      const r = await fetch('/staff/counters/pass', { credentials: 'same-origin', redirect: 'manual', headers: { Accept: 'application/json' } });
      if (r.status === 401 || r.status === 403 || r.type === 'opaqueredirect') {
        // signed out (or an account without the counters role): a resident from now on
        given = false;
        remember(false);
        app.setHelloOpt?.('staff_pass', undefined);
        clearInterval(timer);
        return;
      }
      if (!r.ok) return; // the server is away: try again at the next renewal
      const body = await r.json();
      if (typeof body.pass !== 'string') return;
      given = true;
      remember(true);
      app.setHelloOpt?.('staff_pass', body.pass);
      const every = Math.max(20, (Number(body.expires_in) || 120) - 30) * 1000;
      if (!timer) timer = setInterval(fetchPass, every);
    } catch { /* offline: the next renewal tries again */ }
  }
  if (wanted) app.beforeConnect?.(fetchPass());
  return { given: () => given, stop: () => clearInterval(timer) };
}

export function install(app) {
  const css = Object.assign(document.createElement('link'), { rel: 'stylesheet', href: '/client/counters/counters.css' });
  document.head.append(css);
  const MsgType = app.protocol.MsgType;
  const counterType = MsgType.COUNTER ?? COUNTER;
  const stateType = MsgType.COUNTER_STATE ?? COUNTER_STATE;
  const byId = new Map(app.world.counters.map((c) => [c.id, c]));
  const label = (id) => {
    const l = byId.get(id)?.label;
    return typeof l === 'object' ? l : { ja: l ?? id, en: l ?? id };
  };
  const staffToken = (() => { try { return sessionStorage.getItem('emachi.staff'); } catch { return null; } })();
  const pass = staffPass(app, staffToken);

  let state = { counters: [], ticket: null, booth: null, desk: null };
  let audio = null; // AudioContext, made inside a click (taking a ticket) so that it may sound
  let offered = null; // counter id on offer
  let codePanel = null;
  let notice = null;
  let lastAction = null;
  let ended = null; // what the resident did last: 'leave' (to tell leaving from being dropped)
  const heard = { beeps: 0, calls: 0 };

  function send(action, args = {}) {
    lastAction = action;
    let ok = false;
    try {
      ok = app.send(app.protocol.counterAction ? app.protocol.counterAction(action, args) : [counterType, action, args]);
    } catch (e) {
      console.warn(`emachi: COUNTER ${action} not sent: ${e.message}`);
    }
    if (!ok) say({ ja: `${S.error.ja}（接続していません）`, en: `${S.error.en} (not connected)` });
    return ok;
  }

  function unlockAudio() {
    try {
      audio ??= new AudioContext();
      if (audio.state !== 'running') audio.resume().catch(() => {});
    } catch { /* no Web Audio: the notice still shows */ }
  }

  const signs = new StatusSigns(app);
  const card = new TicketCard(app, {
    label,
    onLeave: () => { ended = 'leave'; send('leave'); },
    onAccept: () => { unlockAudio(); send('accept'); },
  });
  const booth = new BoothPanel(app);
  let desk = null;
  const isStaff = () => Boolean(staffToken) || pass.given() || state.desk != null;

  // ---- the offer when walking up to a counter ----

  const offer = document.createElement('div');
  offer.className = 'counter-offer';
  offer.hidden = true;
  offer.setAttribute('role', 'status');
  const offerText = document.createElement('span');
  const takeButton = document.createElement('button');
  takeButton.type = 'button';
  takeButton.className = 'primary counter-take';
  takeButton.append(bi('span', S.take));
  takeButton.addEventListener('click', () => take(offered));
  const codeButton = document.createElement('button');
  codeButton.type = 'button';
  codeButton.className = 'counter-code';
  codeButton.append(bi('span', S.code));
  codeButton.addEventListener('click', () => openCode());
  offer.append(offerText, takeButton, codeButton);
  (document.querySelector('#panels') ?? document.body).append(offer);

  function take(id) {
    if (!id) return;
    unlockAudio();
    ended = null;
    send('ticket', { counter: id });
  }

  function statusOf(id) {
    return state.counters?.find((c) => c.id === id) ?? null;
  }

  function summary(c) {
    const lk = look(c);
    const st = S.status[lk];
    if (lk === 'absent') return { ja: `${st.ja}（${S.absentHint.ja}）`, en: `${st.en} (${S.absentHint.en})` };
    if (lk === 'closed') return c?.hours ? { ja: `${st.ja}（${S.hours.ja} ${c.hours}）`, en: `${st.en} (${S.hours.en} ${c.hours})` } : st;
    const w = c.waiting ? fmt(S.waiting, { n: c.waiting }) : S.waitNone;
    const m = c.waiting ? minutes(c.wait_s) : null;
    const wm = m ? fmt(S.waitAbout, { m }) : null;
    return { ja: [st.ja, w.ja, wm?.ja].filter(Boolean).join(' · '), en: [st.en, w.en, wm?.en].filter(Boolean).join(' · ') };
  }

  function renderOffer() {
    const c = offered ? statusOf(offered) : null;
    const busyWithUs = state.ticket && ['waiting', 'called'].includes(state.ticket.state);
    const onDuty = Boolean(state.desk?.counter);
    offer.hidden = !offered || Boolean(busyWithUs) || Boolean(state.booth) || onDuty;
    if (offer.hidden) return;
    offer.dataset.counter = offered;
    const l = label(offered);
    const s = summary(c);
    const text = { ja: `${S.nearby.ja}: ${l.ja} — ${s.ja}`, en: `${S.nearby.en}: ${l.en} — ${s.en}` };
    const key = JSON.stringify(text);
    if (offerText.dataset.key !== key) {
      offerText.dataset.key = key;
      offerText.replaceChildren(bi('span', text));
    }
    takeButton.hidden = !c || c.status === 'closed';
  }

  function updateOffer({ things }) {
    const near = things.find((o) => o.kind === 'counter' && o.distance <= Math.max(3, (o.object.width ?? 3) / 2 + 1.5));
    offered = near?.id ?? null;
    renderOffer();
  }

  // ---- a booking code ----

  function openCode() {
    codePanel?.dispose();
    codePanel = app.panel({ title: both(S.code), onClose: () => { codePanel = null; } });
    codePanel.el.classList.add('counter-code-panel');
    const form = document.createElement('form');
    form.autocomplete = 'off';
    const lab = document.createElement('label');
    lab.className = 'counter-field';
    const input = Object.assign(document.createElement('input'), { type: 'text', maxLength: 32, inputMode: 'text', required: true });
    input.setAttribute('autocapitalize', 'characters');
    input.className = 'counter-code-input';
    lab.append(bi('span', S.codeLabel), input);
    const go = document.createElement('button');
    go.type = 'submit';
    go.className = 'primary';
    go.append(bi('span', S.codeGo));
    const status = document.createElement('p');
    status.className = 'counter-status';
    status.setAttribute('aria-live', 'polite');
    form.append(lab, bi('small', S.codeHint, 'counter-muted'), go, status);
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const code = input.value.trim();
      if (!code) return;
      unlockAudio();
      send('enter', { code });
    });
    codePanel.body.append(form);
    codePanel.status = status;
    input.focus();
  }

  // ---- what others read: the text alternative ----

  function notes() {
    const lang = app.lang === 'en' ? 'en' : 'ja';
    for (const c of app.world.counters) {
      const s = statusOf(c.id);
      const st = S.status[look(s)];
      // said: the status in both languages; on the button: short, in the page's language
      const parts = [st[lang]];
      if (s && s.status !== 'closed') {
        parts.push((s.waiting ? fmt(S.waiting, { n: s.waiting }) : S.waitNone)[lang]);
        const m = s.waiting ? minutes(s.wait_s) : null;
        if (m) parts.push(fmt(S.waitAbout, { m })[lang]);
      }
      app.nearby?.setNote(c.id, { live: both(st), short: parts.join(' · ') });
    }
  }

  // ---- role badges over staff on duty ----

  const THREE = app.THREE;
  const badgeTex = badgeTexture(THREE);
  const badgeMat = new THREE.SpriteMaterial({ map: badgeTex, depthTest: false, transparent: true });
  const badges = new Map(); // avatar id -> sprite

  function staffAvatarIds() {
    const ids = new Set();
    const avatars = app.remote?.avatars ?? new Map();
    for (const c of state.counters ?? []) {
      for (const id of c.staff_ids ?? []) ids.add(Number(id));
      if (c.staff_ids || !c.staff?.length) continue;
      // without ids: the avatars of those names standing at that counter
      const w = byId.get(c.id);
      if (!w) continue;
      for (const [id, e] of avatars) {
        const p = e.shown;
        if (p && c.staff.includes(e.avatar.name) && Math.hypot(p.x - w.x, p.z - w.z) < (w.width ?? 3) / 2 + 3) ids.add(id);
      }
    }
    if (state.desk?.counter && app.avatarId != null) ids.add(app.avatarId);
    return ids;
  }

  function groupOf(id) {
    if (id === app.avatarId) return app.selfAvatar?.group ?? null;
    return app.remote?.avatars.get(id)?.avatar.group ?? null;
  }

  function updateBadges() {
    const ids = staffAvatarIds();
    for (const [id, s] of badges) {
      if (!ids.has(id) || s.parent !== groupOf(id)) {
        s.removeFromParent();
        badges.delete(id);
      }
    }
    for (const id of ids) {
      if (badges.has(id)) continue;
      const g = groupOf(id);
      if (!g) continue;
      const s = new THREE.Sprite(badgeMat);
      s.scale.set(0.62, 0.18, 1);
      s.position.y = id === app.avatarId ? SELF_BADGE_Y : BADGE_Y;
      s.renderOrder = 12;
      s.name = 'staff-badge';
      g.add(s);
      badges.set(id, s);
    }
  }

  // ---- the state ----

  const STAFF_ACTIONS = new Set(['duty', 'off_duty', 'call', 'screen', 'link', 'end']);

  /** A refusal or a problem, said where the person is looking. */
  function say(text) {
    if (codePanel?.status && lastAction === 'enter') {
      codePanel.status.replaceChildren(bi('span', text));
    } else if (desk && STAFF_ACTIONS.has(lastAction)) {
      desk.say(text);
    } else if (!card.root.hidden) {
      card.say(text);
    } else {
      notice?.dispose();
      notice = app.panel({ title: both(S.error, ' / '), onClose: () => { notice = null; } });
      notice.el.classList.add('counter-notice');
      notice.body.append(bi('p', text));
    }
  }

  let endedTimer = null;
  /** A ticket ended: say how (left, dropped / no_show, done). */
  function ended_(how) {
    clearTimeout(endedTimer);
    endedTimer = null;
    if (state.booth || how === 'in_booth') return;
    const why = how === 'left' ? 'left' : how === 'done' ? 'done' : 'dropped';
    notice?.dispose();
    notice = app.panel({ title: both(S.ticket, ' / '), onClose: () => { notice = null; } });
    notice.el.classList.add('counter-notice');
    notice.el.dataset.why = why;
    notice.body.append(bi('p', { left: S.left, done: S.done, dropped: S.dropped }[why]));
  }

  function onState(msg) {
    const prev = state;
    state = { counters: [], ticket: null, booth: null, desk: null, ...(msg.state ?? {}) };
    signs.update(state.counters);
    notes();
    const t = state.ticket;
    const was = prev.ticket;
    if (t?.state === 'called' && was?.state !== 'called') {
      heard.calls += 1;
      if (beep(audio)) heard.beeps += 1;
    }
    card.update(t);
    // a ticket that ends is told by NOTICE counter_ticket (how it ended); without one (an older
    // server), its vanishing while waiting says the same
    const gone = was && ['waiting', 'called'].includes(was.state) && !t && !state.booth;
    if (gone) endedTimer = setTimeout(() => ended_(ended === 'leave' ? 'left' : 'dropped'), 1500);
    if (state.booth) {
      codePanel?.dispose();
      if (app.guide?.active && !prev.booth) app.guide.cancel();
    }
    if (prev.booth && !state.booth && !state.desk?.counter) {
      notice?.dispose();
      notice = app.panel({ title: both(S.booth, ' / '), onClose: () => { notice = null; } });
      notice.el.classList.add('counter-notice');
      notice.el.dataset.why = 'done';
      notice.body.append(bi('p', S.done));
    }
    booth.update(state.booth ?? state.desk?.booth ?? null);
    if (isStaff() && !desk) desk = new DeskPanel(app, { send, label });
    desk?.update(state.desk ?? null);
    renderOffer();
    updateBadges();
    // room for what matters now: the call card (phone), the booth and the desk (docs/counters.md)
    document.body.classList.toggle('counter-called', t?.state === 'called');
    document.body.classList.toggle('counter-focus', Boolean(state.booth || state.desk?.counter));
  }

  if (staffToken) desk = new DeskPanel(app, { send, label });

  let badgeAt = 0;
  const undo = [
    app.on(stateType, onState),
    app.on('near', (near) => { updateOffer(near); }),
    app.on('frame', () => {
      card.tick();
      const now = performance.now();
      if (now - badgeAt > 500) { badgeAt = now; updateBadges(); }
    }),
    app.on('pick', (hit) => {
      if (hit.kind !== 'counter') return false;
      offered = hit.id;
      const p = app.panel({ title: both(label(hit.id), ' / ') });
      p.el.classList.add('counter-info');
      p.el.dataset.counter = hit.id;
      const c = statusOf(hit.id);
      p.body.append(bi('p', summary(c), 'counter-summary'));
      if (c?.staff?.length) p.body.append(bi('p', { ja: `${S.staff.ja}: ${c.staff.join('、')}`, en: `${S.staff.en}: ${c.staff.join(', ')}` }));
      const b1 = document.createElement('button');
      b1.type = 'button';
      b1.className = 'primary counter-take';
      b1.append(bi('span', S.take));
      b1.hidden = !c || c.status === 'closed' || Boolean(state.ticket);
      b1.addEventListener('click', () => { take(hit.id); p.dispose(); });
      const b2 = document.createElement('button');
      b2.type = 'button';
      b2.className = 'counter-code';
      b2.append(bi('span', S.code));
      b2.addEventListener('click', () => { p.dispose(); openCode(); });
      p.body.append(b1, b2);
      return true;
    }),
    app.on('ERROR', (msg) => {
      if (!OUR_ERRORS.test(msg.code) && !(lastAction && msg.code in S.errors)) return;
      const known = S.errors[msg.code];
      say(known ?? { ja: `${S.error.ja}: ${msg.reason}`, en: `${S.error.en}: ${msg.reason}` });
    }),
    app.on('welcome', () => { ended = null; }),
    app.on('lang', () => notes()),
    app.on('NOTICE', (msg) => {
      if (msg.kind === 'counter_ticket') ended_(msg.data?.state ?? 'dropped');
    }),
  ];
  notes();

  window.emachiCounters = {
    state: () => state,
    offered: () => offered,
    heard: () => ({ ...heard }),
    sign: (id) => signs.said(id),
    badges: () => [...badges.keys()],
    passGiven: () => pass.given(),
    take, send, openCode,
  };

  return () => {
    undo.forEach((f) => f());
    pass.stop();
    document.body.classList.remove('counter-called', 'counter-focus');
    clearTimeout(endedTimer);
    for (const s of badges.values()) s.removeFromParent();
    badgeMat.dispose();
    badgeTex.dispose();
    signs.dispose();
    card.dispose();
    booth.dispose();
    desk?.dispose();
    codePanel?.dispose();
    notice?.dispose();
    offer.remove();
    for (const c of app.world.counters) app.nearby?.setNote(c.id, null);
    audio?.close().catch(() => {});
    css.remove();
    delete window.emachiCounters;
  };
}

// The resident's ticket, in the panels column while they hold one: the number, the position, how
// many are ahead and the estimated wait, updated live (a polite live region says a new position,
// not every second); "leave the queue". When called it turns into the call: an alert, the way back
// (direction and distance from where one stands, and "take me back" on the hall's guide), the
// accept button and the deadline counting down.

import { bi } from '../kiosk/bilingual.js';
import { bearing, roundMetres } from '../Wayfinder.js';
import { S, both, fmt, minutes } from './strings.js';

// directions in both languages (the hall's own strings follow the chosen language only)
const DIRS = {
  ahead: { ja: '正面', en: 'ahead' }, 'ahead-right': { ja: '右前', en: 'ahead on the right' },
  right: { ja: '右手', en: 'on your right' }, 'behind-right': { ja: '右後ろ', en: 'behind you on the right' },
  behind: { ja: '後ろ', en: 'behind you' }, 'behind-left': { ja: '左後ろ', en: 'behind you on the left' },
  left: { ja: '左手', en: 'on your left' }, 'ahead-left': { ja: '左前', en: 'ahead on the left' },
};

function el(tag, className = '', text = null) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text) e.append(bi('span', text));
  return e;
}

export class TicketCard {
  /**
   * @param {object} app the client's feature API
   * @param {{onLeave: () => void, onAccept: () => void, label: (id: string) => {ja, en}}} opts
   */
  constructor(app, { onLeave, onAccept, label }) {
    this.app = app;
    this.label = label;
    this.ticket = null;
    this.liveKey = '';
    this.root = el('section', 'panel counter-ticket');
    this.root.setAttribute('role', 'region');
    this.root.setAttribute('aria-labelledby', 'counter-ticket-title');
    this.root.tabIndex = -1;
    const head = el('header');
    const h = el('h2', '', S.ticket);
    h.id = 'counter-ticket-title';
    head.append(h);
    this.numberEl = el('p', 'counter-number');
    this.counterEl = el('p', 'counter-where');
    this.facts = el('div', 'counter-facts');
    this.call = el('div', 'counter-call');
    this.call.hidden = true;
    this.callTitle = el('p', 'counter-call-title');
    this.callTitle.setAttribute('role', 'alert');
    this.deadlineEl = el('p', 'counter-deadline');
    this.wayEl = el('p', 'counter-way');
    this.guideButton = el('button', 'counter-guide', S.guide);
    this.guideButton.type = 'button';
    this.guideButton.addEventListener('click', () => this.ticket && app.takeMeTo?.(this.ticket.counter));
    this.acceptButton = el('button', 'primary counter-accept', S.accept);
    this.acceptButton.type = 'button';
    this.acceptButton.addEventListener('click', () => onAccept());
    this.call.append(this.callTitle, this.deadlineEl, this.acceptButton, this.wayEl, this.guideButton);
    this.hint = el('p', 'counter-muted', { ja: `${S.waitFrom.ja}${S.walkAway.ja}`, en: `${S.waitFrom.en} ${S.walkAway.en}` });
    this.leaveButton = el('button', 'counter-leave', S.leave);
    this.leaveButton.type = 'button';
    this.leaveButton.addEventListener('click', () => onLeave());
    this.status = el('p', 'counter-status');
    this.status.setAttribute('aria-live', 'polite');
    // the position, said when it changes (the visible facts change quietly)
    this.live = el('p', 'visually-hidden counter-live');
    this.live.setAttribute('aria-live', 'polite');
    this.live.setAttribute('aria-atomic', 'true');
    this.idRow = el('div', 'counter-idrow');
    this.idRow.append(this.numberEl, this.counterEl);
    this.root.append(head, this.idRow, this.call, this.facts, this.leaveButton, this.status, this.hint, this.live);
    this.root.hidden = true;
    (document.querySelector('#panels') ?? document.body).prepend(this.root);
  }

  /** The state's `ticket` (null: none). */
  update(ticket) {
    const was = this.ticket;
    this.ticket = ticket && ['waiting', 'called'].includes(ticket.state) ? ticket : null;
    this.root.hidden = !this.ticket;
    if (!this.ticket) {
      this.root.classList.remove('called');
      return;
    }
    const t = this.ticket;
    this.root.dataset.state = t.state;
    this.root.dataset.number = String(t.number);
    const name = this.label(t.counter);
    this.numberEl.replaceChildren(bi('span', S.number, 'counter-k'), ' ', Object.assign(document.createElement('strong'), { textContent: String(t.number) }));
    this.counterEl.replaceChildren(bi('span', name));
    const m = minutes(t.wait_s);
    // three tiles: position, ahead, wait — the number big, the words small
    const tile = (cls, head, big, small) => {
      const d = document.createElement('div');
      d.className = `counter-tile ${cls}`;
      const b = document.createElement('strong');
      b.textContent = big;
      d.append(bi('span', head, 'counter-k'), b, Object.assign(document.createElement('small'), { textContent: small, lang: 'en' }));
      return d;
    };
    this.facts.replaceChildren(
      tile('counter-position', S.position, `${t.position}番目`, `No. ${t.position}`),
      tile('counter-ahead', { ja: '前の人', en: 'Ahead' }, `${t.ahead}人`, `${t.ahead} ahead`),
      tile('counter-wait', S.wait, m ? `約${m}分` : S.waitNone.ja, m ? `about ${m} min` : S.waitNone.en),
    );
    const called = t.state === 'called';
    this.root.classList.toggle('called', called);
    this.call.hidden = !called;
    this.hint.hidden = called;
    this.facts.hidden = called;
    if (called) {
      const calledAt = { ja: fmt(S.calledAt, { counter: name.ja }).ja, en: fmt(S.calledAt, { counter: name.en }).en };
      this.callTitle.replaceChildren(bi('strong', S.called), ' ', bi('span', calledAt));
      this.tick();
      if (was?.state !== 'called') {
        this.root.focus({ preventScroll: true });
        this.acceptButton.focus({ preventScroll: true });
      }
    }
    // the live region: a new position or the call, not each second
    const key = `${t.number}|${t.state}|${t.position}`;
    if (key !== this.liveKey) {
      this.liveKey = key;
      const s = Math.max(0, Math.round(((t.call_deadline_ms ?? 0) - this.app.serverNow()) / 1000));
      const text = called
        ? fmt(S.liveCalled, { num: t.number, counter: name.ja, s })
        : fmt(S.livePos, { num: t.number, pos: t.position, n: t.ahead, m: m ?? 0 });
      if (called) text.en = fmt(S.liveCalled, { num: t.number, counter: name.en, s }).en;
      this.live.textContent = both(text, ' ');
    }
  }

  /** Every frame while called: the deadline and the way back (cheap; text only when it changes). */
  tick() {
    const t = this.ticket;
    if (!t || t.state !== 'called') return;
    if (t.call_deadline_ms) {
      const s = Math.max(0, Math.ceil((t.call_deadline_ms - this.app.serverNow()) / 1000));
      const text = both(fmt(S.deadline, { s }), ' · ');
      if (this.deadlineEl.textContent !== text) this.deadlineEl.textContent = text;
    }
    const me = this.app.self();
    const dest = this.app.wayfinder?.destination(t.counter);
    let text = '';
    if (me && dest) {
      const b = bearing(me, this.app.view.cameraYaw, dest.x, dest.z);
      const d = DIRS[b.key] ?? DIRS.ahead;
      const m = roundMetres(b.distance);
      text = b.distance < 2.5 ? both(S.wayHere, ' · ')
        : both({ ja: fmt(S.wayBack, { dir: d.ja, m }).ja, en: fmt(S.wayBack, { dir: d.en, m }).en }, ' · ');
      this.guideButton.hidden = b.distance < 2.5;
    }
    if (this.wayEl.textContent !== text) this.wayEl.textContent = text;
  }

  say(text) {
    this.status.replaceChildren(text ? bi('span', text) : '');
  }

  dispose() {
    this.root.remove();
  }
}

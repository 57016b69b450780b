// The staff member's desk, in the hall (staff pages only): take a counter (duty), see its queue and
// the day's bookings, call the next person, go off duty; in a consultation, put a procedure's kiosk
// panel, a slide or the moving-house checklist on the booth's screen, hand a link (procedure and
// channel), and end it. Every action is one COUNTER message; the server decides and the next
// COUNTER_STATE shows the result (refusals come back as ERROR and are said here).

import { bi } from '../kiosk/bilingual.js';
import { S, both, fmt, minutes } from './strings.js';

const CHANNELS = [
  { id: 'line', label: { ja: 'LINE', en: 'LINE' } },
  { id: 'graffer', label: { ja: 'Graffer スマート申請', en: 'Graffer smart application' } },
  { id: 'mynaportal', label: { ja: 'マイナポータル', en: 'Mynaportal' } },
  { id: 'tokyo-eapp', label: { ja: '東京共同電子申請', en: 'Tokyo joint e-application' } },
  { id: 'city-page', label: { ja: '市のページ', en: "The city's page" } },
];
const DIRECTIONS = [
  { id: 'in', label: { ja: '転入', en: 'Moving in' } },
  { id: 'within', label: { ja: '市内転居', en: 'Moving within' } },
  { id: 'out', label: { ja: '転出', en: 'Moving out' } },
];

function button(text, className, onClick) {
  const b = document.createElement('button');
  b.type = 'button';
  b.className = className;
  b.append(bi('span', text));
  b.addEventListener('click', onClick);
  return b;
}

function select(label, options, className) {
  const wrap = document.createElement('label');
  wrap.className = `counter-field ${className}`;
  const s = document.createElement('select');
  for (const o of options) s.append(new Option(both(o.label, ' / '), o.id));
  wrap.append(bi('span', label), s);
  return { wrap, select: s };
}

export class DeskPanel {
  /**
   * @param {object} app the client's feature API
   * @param {{send: (action: string, args?: object) => boolean, label: (id: string) => {ja, en}}} opts
   */
  constructor(app, { send, label }) {
    this.app = app;
    this.send = send;
    this.label = label;
    this.desk = undefined;
    this.root = document.createElement('section');
    this.root.className = 'panel counter-desk';
    this.root.setAttribute('role', 'region');
    this.root.setAttribute('aria-labelledby', 'counter-desk-title');
    const h = bi('h2', S.desk);
    h.id = 'counter-desk-title';
    this.body = document.createElement('div');
    this.status = document.createElement('p');
    this.status.className = 'counter-status';
    this.status.setAttribute('aria-live', 'polite');
    this.root.append(h, this.body, this.status);
    (document.querySelector('#panels') ?? document.body).append(this.root);
    this.dutyKey = null;
    this.slides = null; // [{id, title, segments}] from /api/briefings
    this.update(null);
  }

  counters() {
    return this.app.world.counters.map((c) => ({ id: c.id, label: this.label(c.id) }));
  }

  /** The state's `desk` (null: off duty, or not known as staff yet). */
  update(desk) {
    const key = desk?.counter ?? '';
    if (key !== this.dutyKey) {
      this.dutyKey = key;
      this.build(desk);
    }
    this.desk = desk;
    if (desk?.counter) this.fill(desk);
  }

  build(desk) {
    this.body.replaceChildren();
    this.root.dataset.duty = desk?.counter ?? '';
    if (!desk?.counter) {
      const pick = select(S.counter, this.counters(), 'counter-pick');
      this.pick = pick.select;
      // the counter one stands nearest is the likely one
      const me = this.app.self();
      if (me) {
        const near = [...this.app.world.counters].sort((a, b) => Math.hypot(a.x - me.x, a.z - me.z) - Math.hypot(b.x - me.x, b.z - me.z))[0];
        if (near) this.pick.value = near.id;
      }
      this.body.append(pick.wrap, button(S.duty, 'primary counter-duty', () => this.send('duty', { counter: this.pick.value })));
      return;
    }
    this.dutyEl = document.createElement('p');
    this.dutyEl.className = 'counter-onduty';
    this.callButton = button(S.callNext, 'primary counter-call-next', () => this.send('call', {}));
    this.queueEl = document.createElement('ol');
    this.queueEl.className = 'counter-queue';
    this.bookingsEl = document.createElement('ul');
    this.bookingsEl.className = 'counter-bookings';
    this.toolsEl = document.createElement('div');
    this.toolsEl.className = 'counter-booth-tools';
    this.body.append(this.dutyEl, this.callButton, bi('h3', S.queue), this.queueEl, bi('h3', S.bookings), this.bookingsEl,
      this.toolsEl, button(S.offDuty, 'counter-off-duty', () => this.send('off_duty', {})));
    this.boothKey = null;
  }

  fill(desk) {
    this.dutyEl.replaceChildren(bi('span', S.onDuty, 'counter-k'), ' ', bi('strong', this.label(desk.counter)));
    const rows = (desk.queue ?? []).map((q) => {
      const li = document.createElement('li');
      li.dataset.number = String(q.number);
      li.dataset.state = q.state;
      const st = S.tstate[q.state] ?? { ja: q.state, en: q.state };
      li.textContent = `${q.number} ${q.name} — ${both(st)} · ${both(fmt(S.waited, { m: minutes(q.waited_s) ?? 0 }))}`;
      return li;
    });
    this.queueEl.replaceChildren(...(rows.length ? rows : [bi('li', S.queueEmpty, 'counter-muted')]));
    const books = (desk.bookings ?? []).map((b) => {
      const li = document.createElement('li');
      const st = S.tstate[b.state] ?? { ja: b.state, en: b.state };
      li.textContent = `${String(b.slot).slice(-5)} ${b.name} — ${both(st)}`;
      return li;
    });
    this.bookingsEl.replaceChildren(...(books.length ? books : [bi('li', S.bookingsNone, 'counter-muted')]));
    const inBooth = Boolean(desk.booth);
    this.callButton.disabled = inBooth;
    const bk = inBooth ? desk.booth.zone ?? 'booth' : '';
    if (bk !== this.boothKey) {
      this.boothKey = bk;
      this.toolsEl.replaceChildren(...(inBooth ? this.boothTools() : []));
    }
  }

  /** The screen and link pickers and "end", for the consultation under way. */
  boothTools() {
    const kiosks = this.app.world.kiosks.filter((k) => (k.kind ?? 'kiosk') === 'kiosk' && k.procedure);
    const kiosk = select(S.kindKiosk, kiosks.map((k) => ({ id: k.id, label: k.label })), 'counter-screen-kiosk-pick');
    const putKiosk = button(S.put, 'counter-put-kiosk', () => this.send('screen', { kind: 'kiosk', ref: kiosk.select.value }));
    const dir = select(S.kindChecklist, DIRECTIONS, 'counter-screen-checklist-pick');
    const putList = button(S.put, 'counter-put-checklist', () => this.send('screen', {
      kind: 'checklist', ref: 'moving', query: { direction: dir.select.value, who: 'alone', nhi: false, children: false, car: false, pet: false },
    }));
    const slide = select(S.kindSlide, [], 'counter-screen-slide-pick');
    const putSlide = button(S.put, 'counter-put-slide', () => slide.select.value && this.send('screen', { kind: 'slide', ref: slide.select.value }));
    this.loadSlides(slide.select, putSlide);
    const seen = new Set();
    const procs = [];
    for (const k of kiosks) if (!seen.has(k.procedure)) { seen.add(k.procedure); procs.push({ id: k.procedure, label: k.label }); }
    const proc = select(S.procedure, procs, 'counter-link-procedure');
    const chan = select(S.channel, CHANNELS, 'counter-link-channel');
    const hand = button(S.hand, 'counter-hand', () => this.send('link', { procedure: proc.select.value, channel: chan.select.value }));
    const group = (title, ...els) => {
      const fs = document.createElement('fieldset');
      fs.append(bi('legend', title), ...els);
      return fs;
    };
    return [
      group(S.screen, kiosk.wrap, putKiosk, dir.wrap, putList, slide.wrap, putSlide),
      group(S.link, proc.wrap, chan.wrap, hand),
      button(S.end, 'counter-end', () => this.send('end', {})),
    ];
  }

  async loadSlides(sel, put) {
    try {
      if (!this.slides) {
        const r = await fetch('/api/briefings');
        this.slides = r.ok ? (await r.json()).briefings ?? [] : [];
      }
    } catch {
      this.slides = [];
    }
    const opts = [];
    for (const b of this.slides) {
      const title = typeof b.title === 'object' ? both(b.title, ' / ') : String(b.title ?? b.id);
      for (let i = 0; i < Math.max(1, b.segments ?? 1); i++) opts.push(new Option(`${title} — ${i + 1}`, `${b.id}/${i}`));
    }
    if (!opts.length) opts.push(new Option(both(S.noSlides, ' / '), ''));
    sel.replaceChildren(...opts);
    put.disabled = !this.slides.length;
  }

  say(text) {
    this.status.replaceChildren(text ? bi('span', text) : '');
  }

  dispose() {
    this.root.remove();
  }
}

// The moving-house checklist: a few questions (choices and yes/no boxes) → the server's list of
// procedures, with what to bring, where to go, and what can be done online now. Each procedure can
// be ticked when done; the answers and ticks stay on this device (localStorage, no personal data:
// question and step ids only) and can be carried to a phone by a QR code of a link that holds them
// (GET /api/helpers/moving/share, opened on the phone as /moving?…, moving-page.js).

import { bi, list, safeUrl } from './bilingual.js';

export const T = {
  title: { ja: '質問に答えてください', en: 'Answer a few questions' },
  submit: { ja: 'やることを見る', en: 'Show my checklist' },
  steps: { ja: 'あなたがする手続き', en: 'Your procedures' },
  bring: { ja: '持っていくもの', en: 'What to bring' },
  counters: { ja: '行く窓口', en: 'Counters to visit' },
  online: { ja: 'いまオンラインでできます', en: 'Can be done online now' },
  when: { ja: 'いつまで', en: 'When' },
  where: { ja: '窓口', en: 'Where' },
  page: { ja: '市のページ', en: "City's page" },
  done: { ja: '済み', en: 'Done' },
  progress: { ja: '済み', en: 'done' },
  kept: { ja: 'この端末に保存しています（答えとチェックだけ。個人情報はありません）', en: 'Kept on this device (answers and ticks only, no personal data)' },
  phone: { ja: 'スマホで続ける', en: 'Continue on your phone' },
  scan: { ja: 'スマホのカメラで読み取ると、このチェックリストがスマホで開きます', en: 'Scan with your phone to open this checklist there' },
  openLink: { ja: 'リンクを開く', en: 'Open the link' },
  failed: { ja: 'QRコードを作れませんでした', en: 'Could not make the QR code' },
};

const KEY = 'emachi.moving.v1';

/** What this device kept: {answers, done: [step ids]} or null. */
export function loadKept() {
  try {
    const v = JSON.parse(localStorage.getItem(KEY) ?? 'null');
    return v && typeof v.answers === 'object' && Array.isArray(v.done) ? v : null;
  } catch {
    return null;
  }
}

export function keep(answers, done) {
  try {
    localStorage.setItem(KEY, JSON.stringify({ answers, done: [...done] }));
  } catch {
    // private mode or storage full: the checklist still works, it is just not kept
  }
}

export function sameAnswers(a, b) {
  if (!a || !b) return false;
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const k of keys) if ((a[k] ?? false) !== (b[k] ?? false)) return false;
  return true;
}

/**
 * The checklist as elements: procedures with a tick box each, what to bring, the counters.
 * @param {object} a the HELPER_ANSWER map for 'moving'
 * @param {Set<string>} done ticked step ids (changed in place)
 * @param {() => void} onTick called after a tick changed
 */
export function renderChecklist(a, done, onTick) {
  const parts = [];
  const head = bi('h3', T.steps);
  const count = document.createElement('span');
  count.className = 'kiosk-progress';
  head.append(' ', count);
  const recount = () => {
    const n = a.steps.filter((s) => done.has(s.id)).length;
    count.textContent = `（${n} / ${a.steps.length} ${T.progress.ja} · ${T.progress.en}）`;
  };
  parts.push(head);
  const ol = document.createElement('ol');
  ol.className = 'kiosk-steps';
  for (const s of a.steps) {
    const li = document.createElement('li');
    li.dataset.step = s.id;
    const tick = document.createElement('label');
    tick.className = 'kiosk-tick';
    const box = Object.assign(document.createElement('input'), { type: 'checkbox', checked: done.has(s.id) });
    box.dataset.step = s.id;
    box.addEventListener('change', () => {
      if (box.checked) done.add(s.id);
      else done.delete(s.id);
      li.classList.toggle('kiosk-done', box.checked);
      recount();
      onTick?.();
    });
    tick.append(box, bi('span', T.done));
    li.classList.toggle('kiosk-done', box.checked);
    li.append(tick, bi('strong', s.title), bi('p', s.what));
    const meta = document.createElement('p');
    meta.className = 'kiosk-meta';
    meta.append(bi('span', { ja: `${T.when.ja}: ${s.deadline.ja}`, en: `${T.when.en}: ${s.deadline.en}` }), document.createElement('br'),
      bi('span', { ja: `${T.where.ja}: ${s.counter.ja}`, en: `${T.where.en}: ${s.counter.en}` }));
    li.append(meta);
    const url = s.online && safeUrl(s.online.url);
    if (url) {
      const link = Object.assign(document.createElement('a'), { href: url, target: '_blank', rel: 'noopener noreferrer', className: 'kiosk-online' });
      link.append(bi('span', { ja: `${T.online.ja}（${s.online.label.ja}）`, en: `${T.online.en} (${s.online.label.en})` }));
      li.append(link);
      if (s.online.note) li.append(bi('small', s.online.note));
    }
    ol.append(li);
  }
  recount();
  parts.push(ol);
  if (a.bring.length) parts.push(bi('h4', T.bring), list(a.bring));
  parts.push(bi('h4', T.counters), list(a.counters));
  parts.push(bi('p', a.sample_note, 'kiosk-sample'));
  const page = safeUrl(a.page);
  if (page) {
    const link = Object.assign(document.createElement('a'), { href: page, target: '_blank', rel: 'noopener noreferrer' });
    link.append(bi('span', T.page));
    parts.push(link);
  }
  return parts;
}

/** The share query for answers and ticks (the server checks and rebuilds it). */
export function shareQuery(shareBase, done) {
  const q = new URLSearchParams(shareBase ?? '');
  if (done.size) q.set('done', [...done].join(','));
  return q.toString();
}

let seq = 0;

export class MovingHelper {
  constructor(app, form) {
    this.app = app;
    this.form = form;
    this.done = new Set();
    this.last = null;
    this.el = document.createElement('form');
    this.el.className = 'kiosk-helper kiosk-moving';
    this.el.append(bi('h3', T.title));
    const id = `mv${++seq}`;
    this.id = id;
    const kept = loadKept();
    for (const q of form.questions) {
      const fs = document.createElement('fieldset');
      fs.dataset.question = q.id;
      if (q.type === 'choice') {
        fs.append(bi('legend', q.text));
        q.options.forEach((o, i) => {
          const label = document.createElement('label');
          const input = Object.assign(document.createElement('input'), { type: 'radio', name: `${id}-${q.id}`, value: o.id, required: true });
          if (kept?.answers?.[q.id] !== undefined) input.checked = kept.answers[q.id] === o.id;
          else if (i === 0 && q.id !== 'direction') input.checked = true;
          label.append(input, bi('span', o.text));
          fs.append(label);
        });
      } else {
        const label = document.createElement('label');
        const input = Object.assign(document.createElement('input'), { type: 'checkbox', name: `${id}-${q.id}`, checked: kept?.answers?.[q.id] === true });
        label.append(input, bi('span', q.text));
        fs.append(label);
      }
      this.el.append(fs);
    }
    const submit = document.createElement('button');
    submit.type = 'submit';
    submit.className = 'primary';
    submit.append(bi('span', T.submit));
    this.el.append(submit);
    this.result = document.createElement('div');
    this.result.className = 'kiosk-result';
    this.result.setAttribute('aria-live', 'polite');
    this.el.append(this.result);
    this.el.addEventListener('submit', (e) => {
      e.preventDefault();
      this.ask();
    });
    // what this device kept comes back as it was left
    if (kept && form.questions.every((q) => q.type !== 'choice' || kept.answers[q.id] !== undefined)) this.ask();
  }

  ask() {
    this.app.send(this.app.protocol.helperAsk('moving', this.answers(this.id)));
  }

  answers(id) {
    const out = {};
    for (const q of this.form.questions) {
      if (q.type === 'choice') {
        const v = this.el.querySelector(`input[name="${id}-${q.id}"]:checked`);
        if (v) out[q.id] = v.value;
      } else {
        out[q.id] = this.el.querySelector(`input[name="${id}-${q.id}"]`).checked;
      }
    }
    return out;
  }

  /** HELPER_ANSWER for 'moving'. */
  answer(a) {
    const kept = loadKept();
    const steps = new Set(a.steps.map((s) => s.id));
    this.done = new Set(sameAnswers(kept?.answers, a.answers) ? kept.done.filter((d) => steps.has(d)) : []);
    this.last = a;
    keep(a.answers, this.done);
    const parts = renderChecklist(a, this.done, () => {
      keep(a.answers, this.done);
      if (!this.qrBox.hidden) this.showQr();
    });
    const phone = document.createElement('button');
    phone.type = 'button';
    phone.className = 'kiosk-phone';
    phone.append(bi('span', T.phone));
    phone.addEventListener('click', () => this.showQr());
    this.qrBox = document.createElement('div');
    this.qrBox.className = 'kiosk-qr-box kiosk-moving-qr';
    this.qrBox.hidden = true;
    parts.push(bi('p', T.kept, 'kiosk-meta'), phone, this.qrBox);
    this.result.replaceChildren(...parts);
  }

  /** Ask the server for the phone's link of these answers and ticks, and show its QR code. */
  async showQr() {
    const a = this.last;
    if (!a) return;
    const box = this.qrBox;
    box.hidden = false;
    try {
      const r = await fetch(`/api/helpers/moving/share?${shareQuery(a.share, this.done)}`, { credentials: 'same-origin' });
      if (!r.ok) throw new Error((await r.json()).reason ?? r.statusText);
      const { url, qr_svg: svg } = await r.json();
      const link = safeUrl(url) ?? (url.startsWith('http://') ? url : null);
      const img = document.createElement('img');
      img.className = 'kiosk-qr';
      img.width = 180;
      img.height = 180;
      img.alt = `QR: ${url}`;
      img.src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(svg)}`;
      const parts = [img, bi('p', T.scan)];
      if (link) {
        const el = Object.assign(document.createElement('a'), { href: link, target: '_blank', rel: 'noopener noreferrer' });
        el.append(bi('span', T.openLink));
        parts.push(el);
      }
      box.dataset.url = url;
      box.replaceChildren(...parts);
    } catch (e) {
      box.replaceChildren(bi('p', { ja: `${T.failed.ja}: ${e.message}`, en: `${T.failed.en}: ${e.message}` }));
    }
  }

  dispose() {}
}

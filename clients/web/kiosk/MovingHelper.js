// The moving-house checklist: a few questions (choices and yes/no boxes) → the server's list of
// procedures, with what to bring, where to go, and what can be done online now.

import { bi, list, safeUrl } from './bilingual.js';

const T = {
  title: { ja: '質問に答えてください', en: 'Answer a few questions' },
  submit: { ja: 'やることを見る', en: 'Show my checklist' },
  steps: { ja: 'あなたがする手続き', en: 'Your procedures' },
  bring: { ja: '持っていくもの', en: 'What to bring' },
  counters: { ja: '行く窓口', en: 'Counters to visit' },
  online: { ja: 'いまオンラインでできます', en: 'Can be done online now' },
  when: { ja: 'いつまで', en: 'When' },
  where: { ja: '窓口', en: 'Where' },
  page: { ja: '市のページ', en: "City's page" },
};

let seq = 0;

export class MovingHelper {
  constructor(app, form) {
    this.app = app;
    this.form = form;
    this.el = document.createElement('form');
    this.el.className = 'kiosk-helper kiosk-moving';
    this.el.append(bi('h3', T.title));
    const id = `mv${++seq}`;
    for (const q of form.questions) {
      const fs = document.createElement('fieldset');
      fs.dataset.question = q.id;
      if (q.type === 'choice') {
        fs.append(bi('legend', q.text));
        q.options.forEach((o, i) => {
          const label = document.createElement('label');
          const input = Object.assign(document.createElement('input'), { type: 'radio', name: `${id}-${q.id}`, value: o.id, required: true });
          if (i === 0 && q.id !== 'direction') input.checked = true;
          label.append(input, bi('span', o.text));
          fs.append(label);
        });
      } else {
        const label = document.createElement('label');
        const input = Object.assign(document.createElement('input'), { type: 'checkbox', name: `${id}-${q.id}` });
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
      this.app.send(this.app.protocol.helperAsk('moving', this.answers(id)));
    });
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
    const parts = [bi('h3', T.steps)];
    const ol = document.createElement('ol');
    ol.className = 'kiosk-steps';
    for (const s of a.steps) {
      const li = document.createElement('li');
      li.dataset.step = s.id;
      li.append(bi('strong', s.title), bi('p', s.what));
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
    this.result.replaceChildren(...parts);
  }

  dispose() {}
}

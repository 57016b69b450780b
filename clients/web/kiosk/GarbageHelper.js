// The bulky-garbage guide: type an item → its category, fee and how to book; an unknown item is
// said plainly with the city's page to look it up. Only the item's own name or a known alias is
// answered surely (answer.sure); any other match (a typo, a compound such as マッサージチェア, the
// start of a name) is shown as a guess, "近い名前で調べました: …", with the close candidates to pick.

import { bi, safeUrl } from './bilingual.js';

const T = {
  label: { ja: '捨てたいもの', en: 'What do you want to throw away?' },
  ask: { ja: '調べる', en: 'Look up' },
  examples: { ja: '例', en: 'e.g.' },
  category: { ja: '種類', en: 'Category' },
  fee: { ja: '手数料', en: 'Fee' },
  how: { ja: '出し方', en: 'How' },
  book: { ja: '申し込む', en: 'Book' },
  maybe: { ja: 'もしかして', en: 'Did you mean' },
  page: { ja: '市のページで調べる', en: "Look it up on the city's page" },
  typo: { ja: '近い名前で調べました', en: 'Closest match' },
  others: { ja: '候補から選ぶ', en: 'Pick the right one' },
};

let seq = 0;

export class GarbageHelper {
  constructor(app, form) {
    this.app = app;
    this.el = document.createElement('form');
    this.el.className = 'kiosk-helper kiosk-garbage';
    const id = `gb${++seq}`;
    const label = bi('label', T.label);
    label.htmlFor = id;
    this.input = Object.assign(document.createElement('input'), { id, type: 'search', maxLength: 60, required: true, autocomplete: 'off' });
    this.input.name = 'item';
    const submit = document.createElement('button');
    submit.type = 'submit';
    submit.className = 'primary';
    submit.append(bi('span', T.ask));
    const ex = document.createElement('p');
    ex.className = 'kiosk-examples';
    ex.append(bi('span', T.examples), ': ');
    for (const e of form?.examples ?? []) {
      const b = document.createElement('button');
      b.type = 'button';
      b.textContent = e.ja;
      b.addEventListener('click', () => this.ask(e.ja));
      ex.append(b, ' ');
    }
    this.result = document.createElement('div');
    this.result.className = 'kiosk-result';
    this.result.setAttribute('aria-live', 'polite');
    this.el.append(label, this.input, submit, ex, this.result);
    this.el.addEventListener('submit', (e) => {
      e.preventDefault();
      this.ask(this.input.value);
    });
  }

  ask(text) {
    this.input.value = text;
    if (text.trim()) this.app.send(this.app.protocol.helperAsk('garbage', { item: text }));
  }

  /** HELPER_ANSWER for 'garbage'. */
  answer(a) {
    const parts = [];
    if (a.found) {
      const it = a.item;
      const sure = a.sure ?? (a.match === 'name' || a.match === 'alias');
      if (!sure) {
        const note = bi('p', a.guess ?? { ja: `${T.typo.ja}: ${it.name.ja}`, en: `${T.typo.en}: ${it.name.en}` }, 'kiosk-guess');
        note.setAttribute('role', 'note');
        parts.push(note);
      }
      const h = bi('h3', it.name);
      if (!sure) h.classList.add('kiosk-guessed');
      parts.push(h);
      const dl = document.createElement('dl');
      dl.className = 'kiosk-facts';
      dl.append(bi('dt', T.category), bi('dd', it.category.name, 'kiosk-category'));
      dl.dataset.category = it.category.id;
      if (it.fee) dl.append(bi('dt', T.fee), bi('dd', it.fee, 'kiosk-fee'));
      dl.append(bi('dt', T.how), bi('dd', it.how));
      parts.push(dl);
      if (it.note) parts.push(bi('p', it.note, 'kiosk-note'));
      for (const b of a.booking ?? []) {
        const url = safeUrl(b.url);
        if (!url) continue;
        const link = Object.assign(document.createElement('a'), { href: url, target: '_blank', rel: 'noopener noreferrer', className: 'kiosk-online' });
        link.append(bi('span', { ja: `${T.book.ja}（${b.label.ja}）`, en: `${T.book.en} (${b.label.en})` }));
        parts.push(link, ' ');
      }
      if (!sure && a.suggestions?.length) parts.push(this.choices(T.others, a.suggestions));
    } else {
      parts.push(bi('p', a.message, 'kiosk-unknown'));
      if (a.suggestions?.length) parts.push(this.choices(T.maybe, a.suggestions));
    }
    const page = safeUrl(a.page);
    if (page) {
      const link = Object.assign(document.createElement('a'), { href: page, target: '_blank', rel: 'noopener noreferrer' });
      link.append(bi('span', T.page));
      parts.push(document.createElement('br'), link);
    }
    parts.push(bi('p', a.sample_note, 'kiosk-sample'));
    this.result.replaceChildren(...parts);
  }

  /** Buttons that ask again with a candidate's own name (then a sure answer). */
  choices(label, names) {
    const p = document.createElement('p');
    p.className = 'kiosk-candidates';
    p.append(bi('span', label), ': ');
    for (const s of names) {
      const b = document.createElement('button');
      b.type = 'button';
      b.textContent = s.ja;
      b.lang = 'ja';
      if (s.en) b.title = s.en;
      b.addEventListener('click', () => this.ask(s.ja));
      p.append(b, ' ');
    }
    return p;
  }

  dispose() {}
}

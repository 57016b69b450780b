// The first screen's form: a display name (the last one used in this tab, or a friendly random
// one), and entering the hall when it is submitted.

const NAMES = ['さくら', 'ひまわり', 'もみじ', 'つばめ', 'すずらん', 'かえで', 'なのはな', 'ゆず', 'あおば', 'こはる'];
const MAX_NAME = 24;
const STORAGE_KEY = 'emachi.name';

function defaultName() {
  const n = NAMES[Math.floor(Math.random() * NAMES.length)];
  return `${n}${Math.floor(10 + Math.random() * 90)}`;
}

export class JoinForm {
  /**
   * @param {Document} doc the page (#join, #join-form, #join-name)
   * @param {(name: string) => void} onEnter called once per submit with a non-empty name
   */
  constructor(doc, onEnter) {
    this.root = doc.querySelector('#join');
    this.form = doc.querySelector('#join-form');
    this.input = doc.querySelector('#join-name');
    this.input.value = JoinForm.savedName() ?? defaultName();
    this.onSubmit = (e) => {
      e.preventDefault();
      const name = this.input.value.trim().slice(0, MAX_NAME);
      if (!name) return;
      try { sessionStorage.setItem(STORAGE_KEY, name); } catch { /* private mode */ }
      onEnter(name);
    };
    this.form.addEventListener('submit', this.onSubmit);
  }

  /** The name entered last in this tab, or null. */
  static savedName() {
    try { return sessionStorage.getItem(STORAGE_KEY); } catch { return null; }
  }

  focus() {
    this.input.focus();
  }

  hide() {
    this.root.hidden = true;
  }

  dispose() {
    this.form.removeEventListener('submit', this.onSubmit);
  }
}

// Push-to-talk: hold Space on a PC (not while typing in a field), or hold a button on a phone.
// onChange(held) is called on every press and release; leaving the window releases.

const EDITABLE = /^(INPUT|TEXTAREA|SELECT)$/;

export class PushToTalk {
  /**
   * @param {HTMLButtonElement} button the on-screen button (phones, and a mouse too)
   * @param {(held: boolean) => void} onChange
   */
  constructor(button, onChange) {
    this.button = button;
    this.onChange = onChange;
    this.key = false;
    this.pointer = null;
    this.undo = [];
    const on = (el, type, fn, opts) => { el.addEventListener(type, fn, opts); this.undo.push(() => el.removeEventListener(type, fn, opts)); };
    on(window, 'keydown', (e) => {
      if (e.code !== 'Space' || e.repeat || e.ctrlKey || e.metaKey || e.altKey) return;
      const t = e.target;
      if (t && (EDITABLE.test(t.tagName) || t.isContentEditable)) return;
      e.preventDefault(); // a focused button would be clicked, the page scrolled
      if (!this.key) { this.key = true; this.emit(); }
    });
    on(window, 'keyup', (e) => {
      if (e.code !== 'Space' || !this.key) return;
      e.preventDefault();
      this.key = false;
      this.emit();
    });
    on(window, 'blur', () => this.releaseAll());
    on(button, 'pointerdown', (e) => {
      e.preventDefault();
      this.pointer = e.pointerId;
      button.setPointerCapture?.(e.pointerId);
      this.emit();
    });
    const up = (e) => { if (e.pointerId === this.pointer) { this.pointer = null; this.emit(); } };
    on(button, 'pointerup', up);
    on(button, 'pointercancel', up);
    on(button, 'lostpointercapture', up);
    on(button, 'contextmenu', (e) => e.preventDefault()); // a long press is not a menu
    // the keyboard on the button itself: Enter held works like Space
    on(button, 'keydown', (e) => { if (e.code === 'Enter' && !e.repeat) { this.enter = true; this.emit(); } });
    on(button, 'keyup', (e) => { if (e.code === 'Enter') { this.enter = false; this.emit(); } });
  }

  get held() {
    return this.key || this.pointer !== null || this.enter === true;
  }

  emit() {
    this.button.setAttribute('aria-pressed', String(this.held));
    this.onChange(this.held);
  }

  releaseAll() {
    const was = this.held;
    this.key = false;
    this.pointer = null;
    this.enter = false;
    if (was) this.emit();
  }

  dispose() {
    for (const f of this.undo) f();
    this.undo = [];
  }
}

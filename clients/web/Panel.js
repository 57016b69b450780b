// A small card in the panels column (bottom right, above the joystick on a phone) for features: a
// title, a body the feature fills, a close button. Opening moves the keyboard focus into it and
// Escape or the button closes it, giving the focus back.

export class Panel {
  /**
   * @param {HTMLElement} column the #panels element
   * @param {{title: string, closeLabel?: string, onClose?: () => void}} options
   */
  constructor(column, { title, closeLabel = '閉じる / Close', onClose } = {}) {
    this.onClose = onClose;
    this.returnFocus = document.activeElement;
    this.el = document.createElement('section');
    this.el.className = 'panel';
    this.el.setAttribute('role', 'dialog');
    this.el.tabIndex = -1;
    const header = document.createElement('header');
    this.titleEl = document.createElement('h2');
    this.titleEl.textContent = title;
    this.el.setAttribute('aria-label', title);
    const close = document.createElement('button');
    close.type = 'button';
    close.textContent = '×';
    close.setAttribute('aria-label', closeLabel);
    close.addEventListener('click', () => this.dispose());
    header.append(this.titleEl, close);
    /** The element a feature fills. */
    this.body = document.createElement('div');
    this.body.className = 'body';
    this.el.append(header, this.body);
    this.onKey = (e) => { if (e.key === 'Escape') this.dispose(); };
    this.el.addEventListener('keydown', this.onKey);
    column.prepend(this.el);
    this.el.focus({ preventScroll: true });
  }

  setTitle(title) {
    this.titleEl.textContent = title;
    this.el.setAttribute('aria-label', title);
  }

  get open() {
    return this.el.isConnected;
  }

  dispose() {
    if (!this.el.isConnected) return;
    this.el.removeEventListener('keydown', this.onKey);
    this.el.remove();
    if (this.returnFocus instanceof HTMLElement && this.returnFocus.isConnected) this.returnFocus.focus({ preventScroll: true });
    this.onClose?.();
  }
}

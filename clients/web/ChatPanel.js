// Text chat: the log (newest at the bottom, at most MAX_LINES) and the form. Sends CHAT with the
// chosen scope (0 the whole instance, 1 nearby); CHAT_MSG lines are added by the app.

import { chat } from './protocol.js';

const MAX_LINES = 80;
const MAX_CHARS = 500;

export class ChatPanel {
  /**
   * @param {HTMLElement} root the #chat section
   * @param {(msg: any[]) => boolean} send
   */
  constructor(root, send) {
    this.root = root;
    this.send = send;
    this.log = root.querySelector('#chat-log');
    this.form = root.querySelector('#chat-form');
    this.input = root.querySelector('#chat-input');
    this.scope = root.querySelector('#chat-scope');
    this.onSubmit = (e) => {
      e.preventDefault();
      const text = this.input.value.trim().slice(0, MAX_CHARS);
      if (!text) return;
      if (this.send(chat(Number(this.scope.value), text))) this.input.value = '';
    };
    this.onKey = (e) => { if (e.key === 'Escape') this.input.blur(); };
    this.form.addEventListener('submit', this.onSubmit);
    this.input.addEventListener('keydown', this.onKey);
  }

  add(name, text, { scope = 0, color = null, system = false } = {}) {
    const li = document.createElement('li');
    if (system) li.className = 'muted';
    if (name) {
      const who = document.createElement('span');
      who.className = 'who';
      who.textContent = scope === 1 ? `${name} ·` : name;
      if (color !== null) who.style.color = `#${(color & 0x7f7f7f).toString(16).padStart(6, '0')}`;
      li.append(who);
    }
    li.append(document.createTextNode(text));
    this.log.append(li);
    while (this.log.children.length > MAX_LINES) this.log.firstElementChild.remove();
    this.log.scrollTop = this.log.scrollHeight;
  }

  dispose() {
    this.form.removeEventListener('submit', this.onSubmit);
    this.input.removeEventListener('keydown', this.onKey);
    this.log.replaceChildren();
  }
}

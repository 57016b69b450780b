// The voice controls: the microphone (with a word on why before the browser asks, and what still
// works when it says no), push-to-talk or open mic, mute self, the megaphone for staff, who hears
// you, and each person's volume and mute. Buttons are at least 44 px high on a phone. It only
// draws and reports presses; feature.js decides.

function el(tag, props = {}, ...children) {
  const e = Object.assign(document.createElement(tag), props);
  e.append(...children);
  return e;
}

export class VoicePanel {
  /**
   * @param {HTMLElement} parent
   * @param {{t: (key: string, vars?: object) => string, device: string, handlers: object}} opts
   *   handlers: onMic(), onAllow(), onCancel(), onMode(mode), onMute(), onMega(), onPeople(open),
   *   onPerson(id, name, change), onHint()
   */
  constructor(parent, { t, device, handlers }) {
    this.t = t;
    this.device = device;
    this.h = handlers;
    this.root = el('section', { id: 'voice', className: `voice ${device}` });
    this.root.setAttribute('aria-labelledby', 'voice-title');
    this.title = el('h2', { id: 'voice-title', className: 'visually-hidden' });
    this.mic = el('button', { type: 'button', className: 'voice-mic' });
    this.ptt = el('button', { type: 'button', className: 'voice-ptt' });
    this.mode = el('button', { type: 'button', className: 'voice-mode' });
    this.mute = el('button', { type: 'button', className: 'voice-mute' });
    this.mega = el('button', { type: 'button', className: 'voice-mega', hidden: true });
    this.peopleBtn = el('button', { type: 'button', className: 'voice-people-toggle' });
    this.peopleBtn.setAttribute('aria-expanded', 'false');
    this.peopleBtn.setAttribute('aria-controls', 'voice-people');
    const row = el('div', { className: 'voice-row' }, this.mic, this.ptt, this.mode, this.mute, this.mega, this.peopleBtn);
    this.why = el('div', { className: 'voice-why', hidden: true });
    this.whyText = el('p');
    this.allow = el('button', { type: 'button', className: 'primary voice-allow' });
    this.cancel = el('button', { type: 'button', className: 'voice-cancel' });
    this.why.append(this.whyText, el('div', { className: 'voice-row' }, this.allow, this.cancel));
    this.note = el('p', { className: 'voice-note', hidden: true });
    this.note.setAttribute('role', 'status');
    this.hint = el('p', { className: 'voice-hint', hidden: true });
    this.hintClose = el('button', { type: 'button', className: 'voice-hint-close', textContent: '×' });
    this.hintText = el('span');
    this.hint.append(this.hintText, this.hintClose);
    this.reach = el('p', { className: 'voice-reach', hidden: true });
    this.reach.setAttribute('aria-live', 'polite');
    this.people = el('ul', { id: 'voice-people', className: 'voice-people', hidden: true });
    this.root.append(this.title, row, this.why, this.note, this.hint, this.reach, this.people);
    parent.append(this.root);
    this.mic.addEventListener('click', () => this.h.onMic());
    this.allow.addEventListener('click', () => this.h.onAllow());
    this.cancel.addEventListener('click', () => this.h.onCancel());
    this.mode.addEventListener('click', () => this.h.onMode(this.state?.mode === 'open' ? 'ptt' : 'open'));
    this.mute.addEventListener('click', () => this.h.onMute());
    this.mega.addEventListener('click', () => this.h.onMega());
    this.hintClose.addEventListener('click', () => this.h.onHint());
    this.peopleBtn.addEventListener('click', () => {
      const open = this.people.hidden;
      this.people.hidden = !open;
      this.peopleBtn.setAttribute('aria-expanded', String(open));
      this.h.onPeople(open);
    });
    this.peopleKey = '';
  }

  /**
   * @param {{mic: string, reason?: string, mode: string, muted: boolean, talking: boolean,
   *   mega: boolean, megaAllowed: boolean, hint: boolean, reach: string, heard: string}} s
   */
  render(s) {
    this.state = s;
    const t = this.t;
    const on = s.mic === 'on';
    this.title.textContent = t('voice.title');
    this.root.dataset.mic = s.mic;
    this.root.dataset.talking = String(s.talking);
    this.mic.textContent = t(on ? 'voice.mic.off' : 'voice.mic.on');
    this.mic.setAttribute('aria-pressed', String(on));
    this.mic.disabled = s.mic === 'insecure' || s.mic === 'unsupported' || s.mic === 'asking';
    this.ptt.hidden = !on || s.mode !== 'ptt' || s.muted;
    this.ptt.textContent = t('voice.ptt.hold');
    this.mode.hidden = !on;
    this.mode.textContent = `${t('voice.mode')}: ${t(s.mode === 'open' ? 'voice.mode.open' : 'voice.mode.ptt')}`;
    this.mute.hidden = !on;
    this.mute.textContent = t(s.muted ? 'voice.unmute' : 'voice.mute');
    this.mute.setAttribute('aria-pressed', String(s.muted));
    this.mega.hidden = !on || !s.megaAllowed;
    this.mega.textContent = t('voice.mega');
    this.mega.setAttribute('aria-pressed', String(s.mega));
    this.peopleBtn.textContent = t('voice.people');
    this.peopleBtn.hidden = s.mic === 'insecure' || s.mic === 'unsupported';
    this.why.hidden = s.mic !== 'why';
    this.whyText.textContent = t('voice.why');
    this.allow.textContent = t('voice.why.allow');
    this.cancel.textContent = t('voice.why.cancel');
    const noteKey = {
      asking: 'voice.asking', refused: 'voice.refused', nodevice: 'voice.nodevice', failed: 'voice.failed',
      insecure: 'voice.insecure', unsupported: 'voice.unsupported',
    }[s.mic];
    let note = noteKey ? t(noteKey, { reason: s.reason ?? '' }) : '';
    if (on && s.muted) note = t('voice.muted');
    else if (on && s.mode === 'ptt' && this.device !== 'phone' && !s.talking) note = t('voice.ptt.key');
    else if (on && s.talking) note = t('voice.talking');
    this.note.hidden = !note;
    if (this.note.textContent !== note) this.note.textContent = note;
    this.hint.hidden = !(on && s.hint);
    this.hintText.textContent = t('voice.headphones');
    this.hintClose.setAttribute('aria-label', t('close'));
    const reach = on ? [s.reach, s.heard].filter(Boolean).join(' ') : '';
    this.reach.hidden = !reach;
    if (this.reach.textContent !== reach) this.reach.textContent = reach;
  }

  /** The people list: [{id, name, volume, muted, speaking}]; rebuilt when the set changes. */
  renderPeople(list) {
    const t = this.t;
    const key = list.map((p) => `${p.id}:${p.name}`).join(',') + t('voice.people');
    if (key !== this.peopleKey) {
      this.peopleKey = key;
      this.rows = new Map();
      if (!list.length) {
        this.people.replaceChildren(el('li', { className: 'muted', textContent: t('voice.people.none') }));
      } else {
        this.people.replaceChildren(...list.map((p) => {
          const name = el('span', { className: 'voice-person-name', textContent: p.name });
          const range = el('input', { type: 'range', min: '0', max: '2', step: '0.1', value: String(p.volume) });
          range.setAttribute('aria-label', t('voice.person.volume', { name: p.name }));
          range.addEventListener('input', () => this.h.onPerson(p.id, p.name, { volume: Number(range.value) }));
          const mute = el('button', { type: 'button', className: 'voice-person-mute' });
          mute.dataset.personId = String(p.id);
          mute.addEventListener('click', () => this.h.onPerson(p.id, p.name, { muted: mute.getAttribute('aria-pressed') !== 'true' }));
          const li = el('li', { className: 'voice-person' }, name, range, mute);
          li.dataset.personId = String(p.id);
          this.rows.set(p.id, { li, range, mute });
          return li;
        }));
      }
    }
    for (const p of list) {
      const r = this.rows.get(p.id);
      if (!r) continue;
      r.li.dataset.speaking = String(p.speaking);
      r.mute.textContent = t(p.muted ? 'voice.person.unmute' : 'voice.person.mute');
      r.mute.setAttribute('aria-pressed', String(p.muted));
      r.mute.setAttribute('aria-label', `${p.name}: ${t(p.muted ? 'voice.person.unmute' : 'voice.person.mute')}`);
      if (document.activeElement !== r.range) r.range.value = String(p.volume);
    }
  }

  dispose() {
    this.root.remove();
  }
}

// The event card: the agenda with the item running and a timer counting down (from the server's
// clock), my table, the people with their role and invite label, raise hand and leave; for hosts
// and staff, their tools (announce, mute, move, shuffle, remove, lock, spotlight, agenda).
// Built from the EVENT state the server sends on every change; dispose() removes it.

const $ = (tag, props = {}, ...children) => {
  const el = Object.assign(document.createElement(tag), props);
  el.append(...children);
  return el;
};

export class EventPanel {
  constructor(app) {
    this.app = app;
    this.state = null;
    this.el = $('aside', { className: 'event-card', hidden: true });
    this.el.setAttribute('aria-label', 'event');
    this.timerEl = $('p', { className: 'event-timer' });
    this.timerEl.setAttribute('role', 'timer');
    this.toast = $('p', { className: 'event-toast', hidden: true });
    this.toast.setAttribute('role', 'status');
    this.toast.setAttribute('aria-live', 'polite');
    this.content = $('div');
    this.el.append(this.timerEl, this.toast, this.content);
    document.body.append(this.el);
    this.lastSecond = null;
  }

  t(key) { return this.app.i18n.t(key); }

  text(ja, en) { return this.app.lang === 'en' ? (en || ja) : (ja || en); }

  act(action, args = {}) { this.app.send(this.app.protocol.hostAction(action, args)); }

  me() {
    const id = this.app.avatarId;
    return this.state?.roster.find((r) => r[0] === id) ?? null;
  }

  update(state) {
    this.state = state;
    this.offset = state.server_time - this.app.serverNow(); // the clock's sampling error, small
    this.el.hidden = false;
    this.render();
  }

  /** Every frame: the timer, redrawn when the second changes. */
  tick() {
    const s = this.state;
    if (!s) return;
    let left = s.remaining_ms;
    if (s.ends_at != null) left = Math.max(0, s.ends_at - this.app.serverNow());
    const sec = left == null ? null : Math.ceil(left / 1000);
    if (sec === this.lastSecond) return;
    this.lastSecond = sec;
    const item = s.items[s.index];
    const name = item ? (this.text(item[2], item[3]) || this.t(`ev.kind.${item[0]}`)) : this.t(`ev.phase.${s.phase}`);
    const clock = sec == null ? '' : ` — ${this.t('ev.timer')} ${Math.floor(sec / 60)}:${String(sec % 60).padStart(2, '0')}`;
    this.timerEl.textContent = `${name}${clock}`;
    this.timerEl.dataset.seconds = sec ?? '';
  }

  notice(kind, data) {
    const say = {
      announcement: () => `📢 ${this.t('ev.announcement')}: ${data.text}${data.from ? ` — ${data.from}` : ''}`,
      muted: () => this.t(data.muted ? 'ev.muted' : 'ev.unmuted'),
      moved: () => `${this.t('ev.moved')}: ${this.tableName(data.table)}`,
      event_left: () => this.t('ev.left'),
      blocked: () => this.t('mod.blocked'),
      reported: () => this.t('mod.reported'),
    }[kind];
    if (!say) return;
    this.toast.textContent = say();
    this.toast.hidden = false;
    clearTimeout(this.toastTimer);
    this.toastTimer = setTimeout(() => { this.toast.hidden = true; }, kind === 'announcement' ? 15000 : 6000);
  }

  tableName(id) {
    const row = this.state?.tables.find((r) => r[0] === id);
    return row ? this.text(row[1], row[2]) : (id || this.t('ev.none'));
  }

  render() {
    const s = this.state;
    const me = this.me();
    const crew = me && (me[2] === 'host' || me[2] === 'staff');
    const host = me && me[2] === 'host';
    const parts = [];
    const flags = [s.locked ? this.t('ev.locked') : '', s.stage_live ? this.t('ev.stage') : ''].filter(Boolean).join(' · ');
    parts.push($('h2', { textContent: this.text(s.title.ja, s.title.en) }));
    if (flags) parts.push($('p', { className: 'event-flags', textContent: flags }));
    const agenda = $('ol', { className: 'event-agenda' });
    s.items.forEach((it, i) => {
      const li = $('li', { textContent: `${this.text(it[2], it[3]) || this.t(`ev.kind.${it[0]}`)} (${Math.round(it[1] / 60)}′)` });
      if (i === s.index) li.setAttribute('aria-current', 'step');
      agenda.append(li);
    });
    parts.push(agenda);
    if (me) parts.push($('p', { className: 'event-mytable', textContent: `${this.t('ev.table')}: ${this.tableName(me[4])}` }));
    const hand = $('button', { type: 'button', textContent: this.t(s.hands.includes(this.app.avatarId) ? 'ev.hand.down' : 'ev.hand') });
    hand.addEventListener('click', () => this.act(s.hands.includes(this.app.avatarId) ? 'lower_hand' : 'raise_hand'));
    const leave = $('button', { type: 'button', textContent: this.t('ev.leave') });
    leave.addEventListener('click', () => this.act('leave'));
    parts.push($('div', { className: 'event-row' }, hand, leave));
    if (crew) parts.push(this.tools(host));
    parts.push($('h3', { textContent: `${this.t('ev.people')} (${s.roster.length})` }));
    const people = $('ul', { className: 'event-people' });
    for (const [id, name, role, label, table, muted] of s.roster) {
      const tag = [this.t(`ev.role.${role}`), label].filter(Boolean).join(' · ');
      const li = $('li', {}, $('span', { className: `event-tag role-${role}`, textContent: `${name} — ${tag}${muted ? ' 🔇' : ''}${s.hands.includes(id) ? ' ✋' : ''}` }));
      li.dataset.avatar = id;
      if (crew && id !== this.app.avatarId) li.append(this.personTools(id, table, muted, host));
      people.append(li);
    }
    parts.push(people);
    this.content.replaceChildren(...parts);
    this.lastSecond = null;
    this.tick();
  }

  button(key, fn) {
    const b = $('button', { type: 'button', textContent: this.t(key) });
    b.addEventListener('click', fn);
    return b;
  }

  tools(host) {
    const s = this.state;
    const box = $('div', { className: 'event-tools' });
    const text = $('input', { type: 'text', maxLength: 500, placeholder: this.t('ev.announce.ph') });
    const form = $('form', { className: 'event-row' }, text, $('button', { type: 'submit', textContent: this.t('ev.announce') }));
    form.addEventListener('submit', (e) => { e.preventDefault(); if (text.value.trim()) this.act('announce', { text: text.value.trim() }); text.value = ''; });
    box.append(form);
    if (!host) return box;
    const row = $('div', { className: 'event-row' });
    row.append(
      this.button('ev.mute.all', () => this.act('mute_all', { muted: true })),
      this.button('ev.unmute.all', () => this.act('mute_all', { muted: false })),
      this.button('ev.shuffle', () => this.act('shuffle')),
      this.button(s.locked ? 'ev.unlock' : 'ev.lock', () => this.act('lock', { locked: !s.locked })),
    );
    const agenda = $('div', { className: 'event-row' });
    const cmds = { scheduled: ['start'], running: ['next', 'pause', 'end'], paused: ['resume', 'next', 'end'] }[s.phase] ?? [];
    for (const c of cmds) agenda.append(this.button(`ev.${c}`, () => this.act('agenda', { command: c })));
    box.append(row, agenda);
    return box;
  }

  personTools(id, table, muted, host) {
    const row = $('span', { className: 'event-row' });
    row.append(this.button(muted ? 'ev.unmute' : 'ev.mute', () => this.act('mute', { avatar: id, muted: !muted })));
    const pick = $('select');
    pick.setAttribute('aria-label', this.t('ev.move'));
    pick.append($('option', { value: '', textContent: `${this.t('ev.move')}…` }));
    for (const [tid, ja, en] of this.state.tables) pick.append($('option', { value: tid, textContent: this.text(ja, en), selected: tid === table }));
    pick.addEventListener('change', () => pick.value && this.act('move', { avatar: id, table: pick.value }));
    row.append(pick);
    if (host) {
      const on = this.state.spotlight === id;
      row.append(this.button(on ? 'ev.spotlight.off' : 'ev.spotlight', () => this.act('spotlight', { avatar: on ? -1 : id })));
    }
    row.append(this.button('ev.remove', () => {
      const reason = window.prompt(this.t('ev.remove.why')) ?? null;
      if (reason !== null) this.act('remove', { avatar: id, reason: reason.slice(0, 200) });
    }));
    return row;
  }

  dispose() {
    clearTimeout(this.toastTimer);
    this.el.remove();
  }
}

// The staff console for events (/staff/events/console): the list, a create form, and an event's
// live view with attendance, invites, the agenda and the host's buttons. Talks only to the staff
// API (/staff/events/..., OpenAPI at /staff/events/openapi.json) with the staff cookie.

const STRINGS = {
  en: {
    list: 'Events', title: 'Title', when: 'When', status: 'Status', present: 'In now', create: 'Create an event',
    'title.ja': 'Title (Japanese)', 'title.en': 'Title (English)', start: 'Start', end: 'End', capacity: 'Capacity',
    hall: 'Hall', tables: 'Tables', agenda: 'Agenda', add: 'Add an item', save: 'Create', invites: 'Invites',
    'role.guest': 'Guest', 'role.staff': 'Staff', 'role.host': 'Host', single: 'One person', 'invite.make': 'Make an invite link',
    attendance: 'Attendance', csv: 'Download CSV', name: 'Name', label: 'Label', role: 'Role', joined: 'In', left: 'Out',
    people: 'In the event now', open: 'Open', revoke: 'Withdraw', cancel: 'Cancel the event',
  },
};
const KINDS = { welcome: ['ようこそ（ステージ）', 'Welcome (stage)'], round: ['テーブルトーク', 'Table talk'], qa: ['質疑応答', 'Q&A'], closing: ['クロージング', 'Closing'] };
const HOST = [['start', '開始', 'Start'], ['next', '次へ', 'Next'], ['pause', '一時停止', 'Pause'], ['resume', '再開', 'Resume'], ['end', '終了', 'End']];

let lang = localStorage.getItem('emachi.lang') === 'en' ? 'en' : 'ja';
const ja = {};
for (const el of document.querySelectorAll('[data-t]')) ja[el.dataset.t] = el.textContent;
const tr = (key) => (lang === 'en' ? STRINGS.en[key] : ja[key]) ?? key;
const pick = (jaText, enText) => (lang === 'en' ? enText : jaText);
const $ = (sel) => document.querySelector(sel);
const el = (tag, props = {}, ...kids) => { const e = Object.assign(document.createElement(tag), props); e.append(...kids); return e; };

async function call(method, path, body) {
  const r = await fetch(path, {
    method, credentials: 'same-origin',
    headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const type = r.headers.get('Content-Type') ?? '';
  const data = type.includes('json') ? await r.json() : await r.text();
  if (!r.ok) throw new Error(typeof data === 'string' ? data : data.reason);
  return data;
}

function applyLang() {
  document.documentElement.lang = lang;
  for (const e of document.querySelectorAll('[data-t]')) e.textContent = tr(e.dataset.t);
  $('#lang').textContent = lang === 'en' ? '日本語' : 'English';
}

let halls = [];
let current = null;

async function loadList() {
  const { events } = await call('GET', '/staff/events');
  const rows = events.map((ev) => {
    const open = el('button', { type: 'button', textContent: tr('open') });
    open.addEventListener('click', () => openEvent(ev.id));
    return el('tr', {}, el('td', { textContent: pick(ev.title.ja, ev.title.en) }),
      el('td', { textContent: `${ev.start.slice(0, 16)} – ${ev.end.slice(11, 16)}` }),
      el('td', { textContent: ev.status }), el('td', { textContent: String(ev.present) }), el('td', {}, open));
  });
  $('#list tbody').replaceChildren(...rows);
}

function addItem(kind = 'round', minutes = 10) {
  const kindSel = el('select', { name: 'kind' });
  for (const [k, [j, e]] of Object.entries(KINDS)) kindSel.append(el('option', { value: k, textContent: pick(j, e), selected: k === kind }));
  const mins = el('input', { type: 'number', name: 'minutes', min: '1', max: '600', value: String(minutes) });
  const shuffle = el('input', { type: 'checkbox', name: 'shuffle', checked: kind === 'round' });
  const remove = el('button', { type: 'button', textContent: '×' });
  const li = el('li', { className: 'row' }, kindSel, mins, el('label', {}, shuffle, ' shuffle'), remove);
  remove.addEventListener('click', () => li.remove());
  $('#agenda').append(li);
}

function fillHalls() {
  const sel = document.querySelector('[name=hall]');
  sel.replaceChildren(...halls.map((h) => el('option', { value: h.id, textContent: pick(h.name.ja, h.name.en) })));
  const show = () => {
    const h = halls.find((x) => x.id === sel.value);
    $('#tables').replaceChildren(...(h?.tables ?? []).map((t) => el('label', {}, el('input', { type: 'checkbox', value: t.id, checked: true }), ` ${pick(t.name.ja, t.name.en)}`)));
  };
  sel.addEventListener('change', show);
  show();
}

function localIso(value) { return new Date(value).toISOString(); }

$('#create').addEventListener('submit', async (e) => {
  e.preventDefault();
  const f = e.target;
  const body = {
    title: { ja: f.ja.value, en: f.en.value }, start: localIso(f.start.value), end: localIso(f.end.value),
    capacity: Number(f.capacity.value), hall: f.hall.value,
    tables: [...$('#tables').querySelectorAll('input:checked')].map((i) => i.value),
    agenda: [...$('#agenda').children].map((li) => {
      const kind = li.querySelector('[name=kind]').value;
      const item = { kind, minutes: Number(li.querySelector('[name=minutes]').value) };
      if (kind === 'round') item.shuffle = li.querySelector('[name=shuffle]').checked;
      return item;
    }),
  };
  try {
    const ev = await call('POST', '/staff/events', body);
    $('#create-error').textContent = '';
    await loadList();
    openEvent(ev.id);
  } catch (err) {
    $('#create-error').textContent = err.message;
  }
});

async function openEvent(id) {
  current = id;
  $('#live-section').hidden = false;
  const ev = await call('GET', `/staff/events/${id}`);
  $('#live-title').textContent = pick(ev.title.ja, ev.title.en);
  $('#csv').href = `/staff/events/${id}/attendance.csv`;
  const buttons = HOST.map(([cmd, j, e]) => {
    const b = el('button', { type: 'button', textContent: pick(j, e) });
    b.addEventListener('click', () => act('agenda', { command: cmd }));
    return b;
  });
  const shuffle = el('button', { type: 'button', textContent: pick('シャッフル', 'Shuffle') });
  shuffle.addEventListener('click', () => act('shuffle'));
  const lock = el('button', { type: 'button', textContent: pick('入場締切 / 再開', 'Doors close / open') });
  lock.addEventListener('click', async () => { const s = await call('GET', `/staff/events/${id}/live`); act('lock', { locked: !s.locked }); });
  const say = el('input', { placeholder: pick('アナウンス', 'Announcement'), maxLength: 500 });
  const send = el('button', { type: 'button', textContent: pick('送る', 'Send') });
  send.addEventListener('click', () => say.value.trim() && act('announce', { text: say.value.trim() }));
  const cancel = el('button', { type: 'button', textContent: tr('cancel') });
  cancel.addEventListener('click', async () => { if (confirm(tr('cancel'))) { await call('POST', `/staff/events/${id}/cancel`); loadList(); } });
  $('#host-buttons').replaceChildren(...buttons, shuffle, lock, say, send, cancel);
  refresh();
}

async function act(action, args = {}) {
  try { await call('POST', `/staff/events/${current}/actions`, { action, args }); } catch (err) { alert(err.message); }
  refresh();
}

async function refresh() {
  if (!current) return;
  const id = current;
  const [live, att, inv] = await Promise.all([
    call('GET', `/staff/events/${id}/live`), call('GET', `/staff/events/${id}/attendance`), call('GET', `/staff/events/${id}/invites`),
  ]);
  const item = live.items[live.index];
  const left = live.remaining_ms == null ? '' : ` — ${Math.ceil(live.remaining_ms / 60000)}′`;
  $('#live-status').textContent = `${live.phase}${item ? `: ${pick(...KINDS[item[0]])}` : ''}${left}${live.locked ? ' · 🔒' : ''}`;
  const fmt = (t) => (t ? new Date(t * 1000).toLocaleTimeString() : '');
  $('#attendance tbody').replaceChildren(...att.visits.map((v) => el('tr', {},
    el('td', { textContent: v.name }), el('td', { textContent: v.label }), el('td', { textContent: v.role }),
    el('td', { textContent: fmt(v.joined) }), el('td', { textContent: fmt(v.left) }))));
  $('#people').replaceChildren(...live.roster.map(([avatar, name, role, label, table, muted]) => {
    const li = el('li', { className: 'row', textContent: `${name} (${role}${label ? ` · ${label}` : ''}) ${table}${muted ? ' 🔇' : ''}${live.hands.includes(avatar) ? ' ✋' : ''} ` });
    const mute = el('button', { type: 'button', textContent: muted ? pick('ミュート解除', 'Unmute') : pick('ミュート', 'Mute') });
    mute.addEventListener('click', () => act('mute', { avatar, muted: !muted }));
    const move = el('select');
    move.append(el('option', { value: '', textContent: pick('移動…', 'Move…') }), ...live.tables.map(([t, j, e]) => el('option', { value: t, textContent: pick(j, e) })));
    move.addEventListener('change', () => move.value && act('move', { avatar, table: move.value }));
    const stage = el('button', { type: 'button', textContent: pick('ステージへ', 'Spotlight') });
    stage.addEventListener('click', () => act('spotlight', { avatar: live.spotlight === avatar ? -1 : avatar }));
    const remove = el('button', { type: 'button', textContent: pick('退出させる', 'Remove') });
    remove.addEventListener('click', () => { const r = prompt(pick('理由', 'Reason')); if (r !== null) act('remove', { avatar, reason: r }); });
    li.append(mute, move, stage, remove);
    return li;
  }));
  $('#invites tbody').replaceChildren(...inv.invites.map((i) => {
    const revoke = el('button', { type: 'button', textContent: tr('revoke'), disabled: i.revoked != null });
    revoke.addEventListener('click', async () => { await call('POST', `/staff/events/${id}/invites/${i.id}/revoke`); refresh(); });
    return el('tr', {}, el('td', { textContent: `${i.role} ${i.label}${i.single_use ? ' (1)' : ''}${i.revoked ? ' ✗' : ''}` }),
      el('td', {}, el('code', { textContent: i.link })), el('td', {}, revoke));
  }));
}

$('#invite').addEventListener('submit', async (e) => {
  e.preventDefault();
  const f = e.target;
  try {
    await call('POST', `/staff/events/${current}/invites`, { role: f.role.value, label: f.label.value, single_use: f.single.checked });
    refresh();
  } catch (err) { alert(err.message); }
});
$('#add-item').addEventListener('click', () => addItem());
$('#lang').addEventListener('click', () => { lang = lang === 'en' ? 'ja' : 'en'; localStorage.setItem('emachi.lang', lang); applyLang(); fillHalls(); loadList(); });

async function main() {
  applyLang();
  const now = new Date(Date.now() + 3600e3);
  now.setMinutes(0, 0, 0);
  const local = (d) => new Date(d - d.getTimezoneOffset() * 60e3).toISOString().slice(0, 16);
  document.querySelector('[name=start]').value = local(now);
  document.querySelector('[name=end]').value = local(new Date(+now + 2 * 3600e3));
  for (const [k, m] of [['welcome', 10], ['round', 20], ['round', 20], ['qa', 15], ['closing', 5]]) addItem(k, m);
  ({ halls } = await call('GET', '/staff/events/halls'));
  fillHalls();
  await loadList();
  setInterval(refresh, 3000);
}

main();

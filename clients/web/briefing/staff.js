// The staff console of one briefing (/staff/briefings/{id}/console, opened once with ?token=...):
// start, pause, resume, go to a segment, rate, end; the question queue (put on the screen, mark answered);
// the minutes once it ended. It only calls the staff API (docs/briefings.md). Opening the page
// with ?token= once gave this browser a staff session cookie (HttpOnly, SameSite=Strict) and sent
// it here without the token: the calls below carry the cookie, and the page never sees the token.
// A staff account's sign-in (/staff/signin) gives the same kind of cookie.

const parts = location.pathname.split('/').filter(Boolean); // staff, briefings, {id}, console
const id = decodeURIComponent(parts[2]);
const api = `/staff/briefings/${encodeURIComponent(id)}`;
const $ = (sel) => document.querySelector(sel);
let segments = [];
let last = null;
let minutesShown = false;
let zone = 'Asia/Tokyo'; // the city's time zone (the staff state's time_zone, --time-zone)

// states said in Japanese with the English beside (the API's value stays in data-state)
const STATES = {
  scheduled: '開始前 / scheduled',
  live: '配信中 / live',
  paused: '一時停止中 / paused',
  ended: '終了 / ended',
  queued: '受付済み / queued',
  shown: '画面に表示中 / shown',
  answered: '回答済 / answered',
};
const said = (state) => STATES[state] ?? state;

// a time in the city's zone, with the zone's name ("2022/6/29 14:00:05 JST")
function cityTime(ms) {
  return new Date(ms).toLocaleString('ja-JP', { timeZone: zone, timeZoneName: 'short' });
}

// the offset (ms) of the city's zone from UTC at instant `ms`
function zoneOffset(ms) {
  const name = new Intl.DateTimeFormat('en-US', { timeZone: zone, timeZoneName: 'longOffset' })
    .formatToParts(new Date(ms)).find((p) => p.type === 'timeZoneName')?.value ?? 'GMT';
  const m = /GMT([+-])(\d{2}):?(\d{2})?/.exec(name);
  return m ? (m[1] === '-' ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3] ?? 0)) * 60000 : 0;
}

// "2024-01-02T14:00" read in the city's zone → an ISO time with its offset, for the server
function cityIso(local) {
  const naive = Date.parse(`${local}:00Z`);
  let off = zoneOffset(naive);
  off = zoneOffset(naive - off); // once more, across a change of offset
  const sign = off < 0 ? '-' : '+';
  const a = Math.abs(off) / 60000;
  return `${local}:00${sign}${String(Math.floor(a / 60)).padStart(2, '0')}:${String(a % 60).padStart(2, '0')}`;
}

// The session's CSRF token: every state-changing call carries it in X-CSRF-Token (the cookie is
// HttpOnly, so the page asks the server once for the token bound to it).
let csrf = null;
async function csrfToken() {
  if (csrf === null) {
    const r = await fetch('/staff/session', { credentials: 'same-origin' });
    csrf = r.ok ? ((await r.json()).csrf ?? '') : '';
  }
  return csrf;
}

async function call(method, path, body) {
  const headers = { 'Content-Type': 'application/json' };
  if (method !== 'GET') headers['X-CSRF-Token'] = await csrfToken();
  const r = await fetch(api + path, {
    method,
    credentials: 'same-origin',
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const ctype = r.headers.get('Content-Type') ?? '';
  const data = ctype.includes('json') ? await r.json() : await r.text();
  if (!r.ok) throw new Error(data.reason ?? data ?? r.statusText);
  return data;
}

async function act(action, body) {
  $('#error').textContent = '';
  try {
    show(await call('POST', `/${action}`, body));
  } catch (e) {
    $('#error').textContent = e.message;
  }
}

function fmt(s) {
  const m = Math.floor(s / 60);
  return `${m}:${String(Math.floor(s % 60)).padStart(2, '0')}`;
}

function show(s) {
  last = s;
  if (s.time_zone && s.time_zone !== zone) {
    zone = s.time_zone;
    document.querySelectorAll('.zone').forEach((el) => { el.textContent = zone; });
  }
  $('#state').textContent = said(s.state);
  $('#state').dataset.state = s.state;
  $('#pos').textContent = `${fmt(s.position)} / ${fmt(s.total)}`;
  $('#viewers').textContent = `ホール ${s.viewers.hall}名 · オンライン ${s.viewers.online}名`;
  document.querySelectorAll('#segments tr').forEach((tr, i) => tr.classList.toggle('current', i === s.segment));
  document.querySelectorAll('#controls button').forEach((b) => {
    const allowed = { start: ['scheduled'], pause: ['live'], resume: ['paused'], end: ['scheduled', 'live', 'paused'], reset: ['ended'] };
    b.disabled = !allowed[b.dataset.action].includes(s.state);
  });
  if (s.state === 'ended') loadMinutes();
  else minutesShown = false;
  $('#notice').textContent = restartText(s.notice);
  $('#notice').hidden = !s.notice;
  $('#schedule').hidden = s.state !== 'scheduled';
  $('#schedule-at').textContent = s.scheduled_at ? cityTime(s.scheduled_at) : '未定 / not set';
}

// what a server restart did to this briefing (the server's `notice`), said to staff
const INTERRUPTED = {
  crashed: 'サーバーが正常に止まらなかったため / the server stopped without a drain',
  down_too_long: 'サーバーの停止が長すぎたため / the server was down too long',
  rendered_again: '配信中に作り直されたため / the briefing was rendered again',
};
function restartText(n) {
  if (!n) return '';
  if (n.kind === 'resumed') {
    return `サーバー再起動: ${Math.round(n.down_s)} 秒止まり、${fmt(n.position)} から続けています（止まっていた間は一時停止扱い） / `
      + `Server restarted: down ${Math.round(n.down_s)} s, going on from ${fmt(n.position)} (the time down counted as paused)`;
  }
  if (n.kind === 'kept_paused') {
    return `サーバー再起動: 一時停止のまま ${fmt(n.position)} にあります / Server restarted: still paused at ${fmt(n.position)}`;
  }
  return `サーバー再起動で中断しました（${INTERRUPTED[n.reason] ?? n.reason}）。議事録は書かれています。「新しい回」でもう一度始められます。 / `
    + 'Interrupted by a server restart; its minutes are written. "New run" starts it again.';
}

function buildSegments(list) {
  segments = list;
  const body = $('#segments');
  body.textContent = '';
  list.forEach((seg, i) => {
    const tr = document.createElement('tr');
    const go = document.createElement('button');
    go.textContent = `${i + 1}`;
    go.setAttribute('aria-label', `セグメント ${i + 1} へ / go to segment ${i + 1}`);
    go.addEventListener('click', () => act('seek', { segment: i }));
    const td0 = document.createElement('td');
    td0.append(go);
    const td1 = document.createElement('td');
    td1.textContent = `${seg.slide.title}`;
    const td2 = document.createElement('td');
    td2.className = 'muted';
    td2.textContent = `${seg.role}（${seg.name}） ${fmt(seg.start)}`;
    tr.append(td0, td1, td2);
    body.append(tr);
  });
}

async function loadQuestions() {
  const { questions } = await call('GET', '/questions');
  const body = $('#questions');
  body.textContent = '';
  for (const q of questions) {
    const tr = document.createElement('tr');
    const text = document.createElement('td');
    text.textContent = q.text;
    const st = document.createElement('td');
    st.textContent = said(q.state);
    st.dataset.state = q.state;
    const btns = document.createElement('td');
    for (const [action, label] of [['show', '画面に表示 / Show'], ['answered', '回答済 / Answered']]) {
      const b = document.createElement('button');
      b.textContent = label;
      b.addEventListener('click', async () => {
        try { await call('POST', `/questions/${q.id}/${action}`); } catch (e) { $('#error').textContent = e.message; }
        loadQuestions();
      });
      btns.append(b);
    }
    tr.append(text, st, btns);
    body.append(tr);
  }
}

// the minutes of the run that ended, as links to their files (/staff/minutes/{file}: addresses to
// keep and share), and the list of every run's minutes
async function loadMinutes() {
  if (minutesShown) return;
  minutesShown = true;
  const p = $('#minutes');
  try {
    const r = await fetch(`/staff/minutes/?format=json&briefing=${encodeURIComponent(id)}`, { credentials: 'same-origin' });
    if (!r.ok) throw new Error(r.statusText);
    const [run] = (await r.json()).minutes;
    const parts = [];
    if (run) {
      parts.push(`${run.started}: `);
      for (const [key, label] of [['html', 'HTML'], ['md', 'Markdown']]) {
        if (!run[key]) continue;
        const a = Object.assign(document.createElement('a'), { href: run[key], target: '_blank', textContent: label });
        a.dataset.format = key;
        parts.push(a, ' · ');
      }
    }
    parts.push(Object.assign(document.createElement('a'), { href: '/staff/minutes/', textContent: 'すべての議事録 / all minutes' }));
    p.replaceChildren(...parts);
  } catch (e) {
    minutesShown = false;
    p.textContent = `議事録を読めませんでした / could not list the minutes: ${e.message}`;
  }
}

document.querySelectorAll('#controls button').forEach((b) => b.addEventListener('click', () => act(b.dataset.action)));
$('#rate').addEventListener('change', (ev) => act('rate', { rate: Number(ev.target.value) }));
$('#schedule').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const v = ev.target.elements.at.value; // a local date and time in the city's zone
  act('schedule', { at: v ? cityIso(v) : null });
});
$('#watch').href = `/briefing/${encodeURIComponent(id)}`;

async function poll() {
  try {
    const s = await call('GET', '');
    $('#title').textContent = s.title;
    if (!segments.length) {
      const r = await fetch(`/api/briefings/${encodeURIComponent(id)}`);
      if (r.ok) buildSegments((await r.json()).segments);
    }
    show(s);
    await loadQuestions();
  } catch (e) {
    $('#error').textContent = e.message;
  }
}
poll();
setInterval(poll, 1000);
window.emachiStaff = { last: () => last, act, cityIso, zone: () => zone };
// the first hook every emachi page has (browser tests wait for it): ready once a state came
window.emachi = { state: () => ({ state: 'staff', frames: last ? 1 : 0 }) };

// The counters' words, Japanese first with the English beside (shown together, as the kiosk panels
// do: a resident who reads either finds their line). {ja, en} pairs for bi(); fmt() fills {x}.

export const S = {
  status: {
    open: { ja: '受付中', en: 'Open' },
    closed: { ja: '受付時間外', en: 'Closed' },
    absent: { ja: 'ただいま担当者不在', en: 'No staff on duty now' },
    busy: { ja: '対応中（順番待ち）', en: 'Busy (please wait)' },
  },
  staff: { ja: '担当', en: 'Staff' },
  noStaff: { ja: '担当者なし', en: 'No one on duty' },
  absentHint: { ja: '受付時間内です。職員が戻るまでお待ちください', en: 'Within hours: staff will be back soon' },
  hours: { ja: '受付時間', en: 'Hours' },
  waiting: { ja: '待ち {n}人', en: '{n} waiting' },
  waitAbout: { ja: '約{m}分', en: 'about {m} min' },
  waitNone: { ja: '待ちなし', en: 'no wait' },
  nearby: { ja: '近くに', en: 'Nearby' },
  take: { ja: '整理券を取る', en: 'Take a ticket' },
  code: { ja: '予約コードで入る', en: 'Enter with a booking code' },
  codeLabel: { ja: '予約コード', en: 'Booking code' },
  codeGo: { ja: '入る', en: 'Enter' },
  codeHint: { ja: '予約したときに表示されたコードです（名前などは不要です）', en: 'The code you were given when you booked (no personal details needed)' },
  ticket: { ja: '整理券', en: 'Your ticket' },
  number: { ja: '番号', en: 'Number' },
  position: { ja: '順番', en: 'Position' },
  positionN: { ja: '{n}番目', en: 'No. {n} in line' },
  ahead: { ja: '前に{n}人', en: '{n} ahead of you' },
  wait: { ja: '待ち時間の目安', en: 'Estimated wait' },
  waitEst: { ja: '約{m}分（最近の対応時間から）', en: 'about {m} min (from recent service times)' },
  waitFrom: { ja: '待ち時間は最近の対応時間からの目安です。', en: 'The wait is estimated from recent service times.' },
  walkAway: { ja: '館内を歩いていても大丈夫です。順番が来たら音とお知らせで呼びます。', en: 'You may walk around the hall: a sound and a notice will call you back.' },
  leave: { ja: '列を離れる', en: 'Leave the queue' },
  left: { ja: '列を離れました。', en: 'You left the queue.' },
  dropped: { ja: '整理券は無効になりました（長く離れていたか、呼び出しに応答がありませんでした）。', en: 'Your ticket lapsed (you were away too long, or did not answer the call).' },
  done: { ja: 'ご相談ありがとうございました。', en: 'Thank you for visiting.' },
  livePos: { ja: '整理券 {num}番: {pos}番目、前に{n}人、約{m}分', en: 'Ticket {num}: number {pos} in line, {n} ahead, about {m} min' },
  called: { ja: '順番が来ました！', en: 'It is your turn!' },
  calledAt: { ja: '{counter}がお呼びです', en: '{counter} is calling you' },
  liveCalled: { ja: '整理券 {num}番のかた、{counter}がお呼びです。{s}秒以内に「相談を始める」を押してください。', en: 'Ticket {num}: {counter} is calling you. Press "Start the consultation" within {s} seconds.' },
  deadline: { ja: 'あと{s}秒', en: '{s} s left' },
  wayBack: { ja: '窓口は{dir} {m} m', en: 'The counter is {dir}, {m} m' },
  wayHere: { ja: '窓口のすぐ前にいます', en: 'You are at the counter' },
  guide: { ja: '窓口まで案内', en: 'Take me back' },
  accept: { ja: '相談を始める', en: 'Start the consultation' },
  booth: { ja: '相談ブース', en: 'Consultation booth' },
  with: { ja: '相談相手', en: 'With' },
  privateHint: { ja: 'このブースの音声とチャットは、お二人の間だけに届きます。', en: 'Voice and chat here reach only the two of you.' },
  screen: { ja: 'ブースの画面', en: 'The booth screen' },
  screenEmpty: { ja: '（担当者が資料を映すとここに出ます）', en: '(What the staff member shows appears here)' },
  link: { ja: '担当者からのリンク', en: 'A link from the staff' },
  openLink: { ja: 'リンクを開く', en: 'Open the link' },
  scan: { ja: 'スマホのカメラで読み取ると、スマホで開けます', en: 'Scan with your phone to open it there' },
  desk: { ja: '窓口業務（職員）', en: 'Counter desk (staff)' },
  duty: { ja: 'この窓口を担当する', en: 'Take this counter' },
  counter: { ja: '窓口', en: 'Counter' },
  offDuty: { ja: '担当を終える', en: 'Go off duty' },
  onDuty: { ja: '担当中', en: 'On duty' },
  queue: { ja: '待っている人', en: 'The queue' },
  queueEmpty: { ja: '待っている人はいません', en: 'Nobody is waiting' },
  bookings: { ja: '本日の予約', en: "Today's bookings" },
  bookingsNone: { ja: '予約はありません', en: 'No bookings' },
  callNext: { ja: '次の人を呼ぶ', en: 'Call the next person' },
  waited: { ja: '{m}分待ち', en: 'waited {m} min' },
  tstate: {
    waiting: { ja: '待機中', en: 'waiting' }, called: { ja: '呼び出し中', en: 'called' },
    in_booth: { ja: '相談中', en: 'in the booth' }, booked: { ja: '予約', en: 'booked' },
    done: { ja: '終了', en: 'done' }, no_show: { ja: '来なかった', en: 'no-show' },
  },
  put: { ja: '画面に映す', en: 'Show on the screen' },
  kindKiosk: { ja: '手続きの案内（キオスク）', en: "A procedure's kiosk panel" },
  kindSlide: { ja: 'スライド', en: 'A slide' },
  kindChecklist: { ja: '引越しチェックリスト', en: 'The moving-house checklist' },
  noSlides: { ja: '説明会のスライドはありません', en: 'No briefing slides' },
  hand: { ja: 'リンクを渡す', en: 'Hand the link' },
  procedure: { ja: '手続き', en: 'Procedure' },
  channel: { ja: '申請方法', en: 'Channel' },
  end: { ja: '相談を終える', en: 'End the consultation' },
  badge: { ja: '職員', en: 'Staff' },
  error: { ja: 'できませんでした', en: 'That did not work' },
  errors: {
    counter_closed: { ja: 'この窓口はいま受付していません。', en: 'This counter is not open now.' },
    ticket_exists: { ja: 'すでに整理券をお持ちです。', en: 'You already have a ticket.' },
    ticket_rate: { ja: '整理券の取り直しが多すぎます。少し待ってください。', en: 'Too many tickets taken; please wait a little.' },
    code_unknown: { ja: 'その予約コードは見つかりません（予約の時間帯か確かめてください）。', en: 'That booking code is not known (check the time of your slot).' },
    code_rate: { ja: '試した回数が多すぎます。しばらくしてからもう一度どうぞ。', en: 'Too many tries; please try again later.' },
    slot_not_yet: { ja: 'この予約の時間はまだです。予約の5分前から入れます。', en: 'Your slot has not come yet: you may enter from 5 minutes before it.' },
    slot_over: { ja: 'この予約の時間は過ぎました。', en: 'The time of this booking has gone by.' },
    code_used: { ja: 'この予約コードはもう使われました。', en: 'This booking code has been used.' },
    not_called: { ja: 'まだ呼ばれていません。', en: 'You have not been called yet.' },
  },
};

/** How a counter reads: `open`, `busy`, `closed` (outside its hours) or `absent` (inside them,
 *  nobody on duty: the server's `reason` "no_staff"). Before any state: `closed`. */
export function look(c) {
  if (!c) return 'closed';
  if (c.status === 'closed' && c.reason === 'no_staff') return 'absent';
  return S.status[c.status] ? c.status : 'closed';
}

/** Fill {x} in both languages. */
export function fmt(text, vars) {
  const f = (s) => String(s).replace(/\{(\w+)\}/g, (_, k) => (vars[k] ?? ''));
  return { ja: f(text.ja), en: f(text.en) };
}

/** "受付中 / Open": both languages on one line (the 3D sign, the text alternative). */
export function both(text, sep = ' / ') {
  return text.en && text.en !== text.ja ? `${text.ja}${sep}${text.en}` : text.ja;
}

/** A wait in whole minutes (at least 1), or null when unknown. */
export function minutes(s) {
  return s == null ? null : Math.max(1, Math.round(s / 60));
}

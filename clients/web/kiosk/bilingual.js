// Japanese first, English beside: small DOM helpers shared by the kiosk panels.

/** An element with the Japanese text, then the English in a quieter span beside it. */
export function bi(tag, text, className = '') {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (!text) return el;
  const ja = document.createElement('span');
  ja.lang = 'ja';
  ja.textContent = text.ja ?? '';
  el.append(ja);
  if (text.en && text.en !== text.ja) {
    const en = document.createElement('span');
    en.lang = 'en';
    en.className = 'kiosk-en';
    en.textContent = text.en;
    el.append(' ', en);
  }
  return el;
}

/** A definition row: a bilingual label and a bilingual value. */
export function row(dl, label, value) {
  if (!value) return;
  dl.append(bi('dt', label), bi('dd', value));
}

/** A bilingual list. */
export function list(items, className = '') {
  const ul = document.createElement('ul');
  if (className) ul.className = className;
  for (const it of items) ul.append(bi('li', it));
  return ul;
}

/** Only https links leave the page, whatever a message says (the server builds them anyway). */
export function safeUrl(url) {
  try {
    const u = new URL(url);
    return u.protocol === 'https:' && !u.username && !u.password ? u.href : null;
  } catch {
    return null;
  }
}

export const L = {
  who: { ja: '申請できる人', en: 'Who may apply' },
  bring: { ja: '持ち物', en: 'What to bring' },
  counter: { ja: '窓口', en: 'Counter' },
  hours: { ja: '受付時間', en: 'Hours' },
  place: { ja: '場所', en: 'Where' },
  fee: { ja: '手数料', en: 'Fee' },
  payOnline: { ja: 'オンラインで支払えます', en: 'Can be paid online' },
  payCounter: { ja: '支払いは窓口で', en: 'Pay at the counter' },
  channels: { ja: 'オンラインで手続きする', en: 'Do it online' },
  identity: { ja: '本人確認あり', en: 'with ID check' },
  payment: { ja: '支払いあり', en: 'with payment' },
  qr: { ja: 'スマホのカメラで読み取ると、LINEで続きができます', en: 'Scan with your phone to continue in LINE' },
  openAnyway: { ja: 'このパソコンで開く', en: 'Open on this PC' },
  opened: { ja: '新しいタブで開きました', en: 'Opened in a new tab' },
  tooFar: { ja: 'キオスクの近くまで歩いてから開いてください。', en: 'Walk up to the kiosk to open it.' },
  nearby: { ja: '近くに', en: 'Nearby' },
  open: { ja: '開く', en: 'Open' },
  error: { ja: 'うまくいきませんでした', en: 'That did not work' },
};

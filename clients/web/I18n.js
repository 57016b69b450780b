// Japanese first, English switchable: the strings of the client and the current language (kept in
// localStorage; ?lang=en in the address chooses too). Features add their own strings with add().
// Elements with data-i18n="key" are filled in by apply(); data-i18n-attr="placeholder:key,..."
// sets attributes.

const STRINGS = {
  ja: {
    'title': 'e-まち 町田市役所',
    'subtitle': 'バーチャル市役所',
    'intro': 'ブラウザで歩ける町田市役所です。窓口に並ばずに、キオスクからオンライン手続き（LINE・Web）を開けます。説明会の中継やほかの来庁者との会話もできます。',
    'intro.private': 'アカウント不要。名前は表示用だけで、記録しません。',
    'name.label': '表示名',
    'name.hint': '1〜24文字。ほかの人に見えます。',
    'enter': '入る',
    'lang.switch': 'English',
    'status.connecting': '接続中…',
    'status.connected': '接続済み',
    'status.reconnecting': '再接続中…',
    'status.closed': '切断',
    'status.instance': '会場',
    'status.people': '{n}人',
    'status.crowd': 'ほか{n}人',
    'msg.full': '市役所がいっぱいです。しばらくしてから自動で入り直します。',
    'msg.unreachable': 'サーバーにつながりません。{s}秒後にもう一度試します。',
    'msg.restarting': 'サーバーを再起動しています。すぐに戻ります。',
    'msg.back.kept': '戻りました。アバターはそのままです。',
    'msg.back.new': 'サーバーが再起動したため、入口から入り直しました。',
    'msg.lost': '接続が切れました。再接続しています…',
    'msg.replaced': 'この名前のアバターは別のタブで使われています。',
    'msg.removed': '主催者によって退出しました。',
    'msg.version': '新しい版があります。ページを再読み込みしてください。',
    'msg.unauthorized': '招待が無効か期限切れです。',
    'msg.invite.invalid': 'この招待リンクは使えません。主催者に新しいリンクをお願いしてください。',
    'msg.invite.expired': 'この招待リンクは有効期限が切れています。主催者に新しいリンクをお願いしてください。',
    'msg.invite.revoked': 'この招待は主催者によって取り消されました。',
    'msg.invite.other': 'この招待リンクは別のイベントのものです。',
    'msg.invite.used': 'この招待リンクは1人用で、すでに使われています。',
    'msg.event.full': 'イベントは満員です。',
    'msg.event.early': 'イベントはまだ始まっていません。開始の15分前から入れます。',
    'msg.event.over': 'このイベントは終了したか、中止になりました。',
    'msg.event.locked': '主催者が入場を締め切りました。',
    'msg.banned': 'しばらくの間、入場できません（運営の判断によります）。',
    'msg.retry': '今すぐ再試行',
    'chat.label': 'チャット',
    'chat.placeholder': 'メッセージを入力',
    'chat.send': '送信',
    'chat.scope.all': '全体',
    'chat.scope.near': '近く',
    'near.title': '周りの様子',
    'near.people': '近くの人: {list}',
    'near.nobody': '近くに人はいません。',
    'near.things': '近くにあるもの: {list}',
    'near.where': '現在地: {place}',
    'near.here': 'すぐそば',
    'near.close': '近く',
    'near.ahead': '少し先',
    'help.keys': '移動: WASD・矢印キー（Shiftで走る） / 向き: Q・E・←→ / 視点: ドラッグ',
    'help.touch': '左下のスティックで移動、画面をドラッグで視点',
    'kind.kiosk': 'キオスク',
    'kind.helper': 'おてつだい',
    'kind.thumbnail': 'リンク',
    'kind.counter': '窓口',
    'kind.table': 'テーブル',
    'kind.stage': 'ステージ',
    'kind.stairs': '階段',
    'kind.person': '人',
    'status.waiting': '順番待ち',
    'count.none': '近くに人はいません',
    'count.near': '近くに{n}人',
    'count.beyond': '近くに{n}人、このフロアにほか{m}人',
    'dir.ahead': '正面',
    'dir.ahead-right': '右前',
    'dir.right': '右手',
    'dir.behind-right': '右後ろ',
    'dir.behind': '後ろ',
    'dir.behind-left': '左後ろ',
    'dir.left': '左手',
    'dir.ahead-left': '左前',
    'dir.short': '{dir} {m} m',
    'dir.thing': '{dir} {m} m に{place}',
    'dir.person': '{name}（{dir} {m} m）',
    'list.sep': '、',
    'map.open': '案内図・行き先',
    'map.title': '総合案内 — 案内図と行き先',
    'map.floors': '階',
    'map.search': '行き先を探す（例: 住民票）',
    'map.here': '現在地',
    'map.alt': '{floor}の案内図。赤い点が現在地です。',
    'map.go': '{place}へ行く（{where}）',
    'map.none': '見つかりません。',
    'map.group.counter': '窓口',
    'map.group.kiosk': 'キオスク',
    'map.group.room': '部屋・場所',
    'map.group.event': '説明会・イベント',
    'guide.start': '{place}へ案内します（約{m} m）。キーを押すと止まります。',
    'guide.arrived': '{place}に着きました。',
    'guide.stopped': '案内を止めました。',
    'guide.noway': '{place}への道が見つかりません。',
    'guide.stuck': '{place}へ進めません。案内を止めました。',
    'info.title': '総合案内',
    'info.sub': '案内図・行き先',
    'queue.title': '市役所はいま満員です',
    'queue.position': '順番待ち {position}番目（前に{ahead}人）',
    'queue.eta': '目安: 約{min}分',
    'queue.eta.soon': '目安: まもなく',
    'queue.eta.unknown': '目安: 空きが出しだい',
    'queue.auto': '空きが出たら自動で入ります。このページを開いたままお待ちください。',
    'queue.retry': '満員です。{s}秒ごとに自動で入り直します。',
    'queue.watch': 'アバターなしで見る',
    'queue.watch.hint': '待っている間、ステージの説明会をアバターなしで視聴できます（順番はそのままです）。',
    'queue.watch.none': 'いま中継中の説明会はありません。',
    'hint.phone': '左下の丸いスティックを指で押したまま動かすと歩けます。画面をなぞると見回せます。',
    'hint.ok': 'わかった',
    'self.you': 'あなた',
    'close': '閉じる',
    'panel.person': '{name} さん',
  },
  en: {
    'title': 'e-machi Machida City Hall',
    'subtitle': 'The virtual city hall',
    'intro': 'Machida City Hall, walkable in your browser. Skip the queue: kiosks open online procedures (LINE, web). Watch briefings and talk with other visitors.',
    'intro.private': 'No account. Your name is only shown to others, never stored.',
    'name.label': 'Display name',
    'name.hint': '1–24 characters, visible to others.',
    'enter': 'Enter',
    'lang.switch': '日本語',
    'status.connecting': 'Connecting…',
    'status.connected': 'Connected',
    'status.reconnecting': 'Reconnecting…',
    'status.closed': 'Disconnected',
    'status.instance': 'Hall',
    'status.people': '{n} here',
    'status.crowd': '+{n} more',
    'msg.full': 'The hall is full. We will try again automatically in a moment.',
    'msg.unreachable': 'Cannot reach the server. Trying again in {s} s.',
    'msg.restarting': 'The server is restarting. Back in a moment.',
    'msg.back.kept': 'Back. Your avatar is where it was.',
    'msg.back.new': 'The server restarted, so you came back in at the entrance.',
    'msg.lost': 'Connection lost. Reconnecting…',
    'msg.replaced': 'Your avatar was taken over by another tab.',
    'msg.removed': 'You were removed by the host.',
    'msg.version': 'A new version is out. Please reload the page.',
    'msg.unauthorized': 'The invitation is invalid or expired.',
    'msg.invite.invalid': 'This invitation link does not work. Please ask the organiser for a new one.',
    'msg.invite.expired': 'This invitation link has expired. Please ask the organiser for a new one.',
    'msg.invite.revoked': 'The organiser withdrew this invitation.',
    'msg.invite.other': 'This invitation link is for another event.',
    'msg.invite.used': 'This invitation was for one person and has been used already.',
    'msg.event.full': 'The event is full.',
    'msg.event.early': 'The event has not started yet. You can come in from 15 minutes before it begins.',
    'msg.event.over': 'This event is over or was cancelled.',
    'msg.event.locked': 'The host has closed the doors.',
    'msg.banned': 'You may not come in for a while (a moderator decided so).',
    'msg.retry': 'Retry now',
    'chat.label': 'Chat',
    'chat.placeholder': 'Type a message',
    'chat.send': 'Send',
    'chat.scope.all': 'Everyone',
    'chat.scope.near': 'Nearby',
    'near.title': 'Around you',
    'near.people': 'People near you: {list}',
    'near.nobody': 'Nobody is near you.',
    'near.things': 'Close by: {list}',
    'near.where': 'You are on {place}',
    'near.here': 'right here',
    'near.close': 'close',
    'near.ahead': 'a little further',
    'help.keys': 'Move: WASD or arrows (Shift runs) / turn: Q, E, ← → / look: drag',
    'help.touch': 'Move with the stick (bottom left), drag the view to look around',
    'kind.kiosk': 'kiosk',
    'kind.helper': 'helper',
    'kind.thumbnail': 'link',
    'kind.counter': 'counter',
    'kind.table': 'table',
    'kind.stage': 'stage',
    'kind.stairs': 'stairs',
    'kind.person': 'person',
    'status.waiting': 'Waiting in line',
    'count.none': 'Nobody near you',
    'count.near': '{n} people near you',
    'count.beyond': '{n} people near you, {m} more on this floor',
    'dir.ahead': 'ahead',
    'dir.ahead-right': 'ahead right',
    'dir.right': 'to your right',
    'dir.behind-right': 'behind right',
    'dir.behind': 'behind you',
    'dir.behind-left': 'behind left',
    'dir.left': 'to your left',
    'dir.ahead-left': 'ahead left',
    'dir.short': '{m} m {dir}',
    'dir.thing': '{place}, {m} m {dir}',
    'dir.person': '{name} ({m} m {dir})',
    'list.sep': '; ',
    'map.open': 'Map · take me to',
    'map.title': 'Information — map and destinations',
    'map.floors': 'Floor',
    'map.search': 'Find a place (e.g. residence)',
    'map.here': 'You',
    'map.alt': 'Map of {floor}. The red dot is you.',
    'map.go': 'Take me to {place} ({where})',
    'map.none': 'Nothing found.',
    'map.group.counter': 'Counters',
    'map.group.kiosk': 'Kiosks',
    'map.group.room': 'Rooms and places',
    'map.group.event': 'Briefings and events',
    'guide.start': 'Taking you to {place} (about {m} m). Press any movement key to stop.',
    'guide.arrived': 'You have reached {place}.',
    'guide.stopped': 'Guidance stopped.',
    'guide.noway': 'No way to {place} was found.',
    'guide.stuck': 'Cannot get through to {place}. Guidance stopped.',
    'info.title': 'Information',
    'info.sub': 'Map · take me to',
    'queue.title': 'The city hall is full right now',
    'queue.position': 'You are number {position} in line ({ahead} ahead of you)',
    'queue.eta': 'About {min} min',
    'queue.eta.soon': 'Any moment now',
    'queue.eta.unknown': 'As soon as a place frees',
    'queue.auto': 'You will be let in automatically. Keep this page open.',
    'queue.retry': 'Full. Trying again every {s} s.',
    'queue.watch': 'Watch without an avatar',
    'queue.watch.hint': 'While you wait you can watch the briefing on the stage without an avatar (you keep your place).',
    'queue.watch.none': 'No briefing is on right now.',
    'hint.phone': 'Hold the round stick at the bottom left and move your thumb to walk. Swipe the view to look around.',
    'hint.ok': 'Got it',
    'self.you': 'You',
    'close': 'Close',
    'panel.person': '{name}',
  },
};

const LANG_KEY = 'emachi.lang';

export class I18n extends EventTarget {
  constructor() {
    super();
    let saved = new URLSearchParams(location.search).get('lang');
    if (saved !== 'en' && saved !== 'ja') {
      try { saved = localStorage.getItem(LANG_KEY); } catch { /* private mode */ }
    }
    this.lang = saved === 'en' || saved === 'ja' ? saved : 'ja';
    this.strings = { ja: { ...STRINGS.ja }, en: { ...STRINGS.en } };
  }

  /** Add strings: {ja: {key: text}, en: {key: text}}. */
  add(table) {
    for (const lang of ['ja', 'en']) Object.assign(this.strings[lang], table[lang] ?? {});
  }

  t(key, vars = {}) {
    const s = this.strings[this.lang][key] ?? this.strings.ja[key] ?? key;
    return s.replace(/\{(\w+)\}/g, (_, k) => String(vars[k] ?? ''));
  }

  /** A world text ({ja, en}) or a plain string in the current language. */
  text(t) {
    if (t == null) return '';
    if (typeof t === 'string') return t;
    return t[this.lang] ?? t.ja ?? t.en ?? '';
  }

  setLang(lang) {
    this.lang = lang;
    try { localStorage.setItem(LANG_KEY, lang); } catch { /* private mode */ }
    document.documentElement.lang = lang;
    this.apply(document);
    this.dispatchEvent(new CustomEvent('change', { detail: lang }));
  }

  apply(root) {
    for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = this.t(el.dataset.i18n);
    for (const el of root.querySelectorAll('[data-i18n-attr]')) {
      for (const pair of el.dataset.i18nAttr.split(',')) {
        const [attr, key] = pair.split(':');
        el.setAttribute(attr, this.t(key));
      }
    }
  }

  dispose() {}
}

// Events in the hall (server/events/): the agenda, a timer counting down, my table, the people
// with their role and invite label, raise hand and leave; hosts and staff get their tools beside
// each person and for the room. Everywhere (the public hall too): tap a person to block or report
// them. Installed by App.js (features.js); window.emachiEvent exposes the state for tests.

import { EventPanel } from './EventPanel.js';

const STRINGS = {
  ja: {
    'ev.title': 'イベント', 'ev.timer': '残り', 'ev.table': 'あなたのテーブル', 'ev.none': 'なし',
    'ev.hand': '手を挙げる', 'ev.hand.down': '手を下ろす', 'ev.leave': '退出する', 'ev.people': '参加者',
    'ev.kind.welcome': 'ようこそ（ステージ）', 'ev.kind.round': 'テーブルトーク', 'ev.kind.qa': '質疑応答', 'ev.kind.closing': 'クロージング',
    'ev.phase.scheduled': '開始前', 'ev.phase.running': '進行中', 'ev.phase.paused': '一時停止', 'ev.phase.ended': '終了', 'ev.phase.cancelled': '中止',
    'ev.role.host': '主催', 'ev.role.staff': 'スタッフ', 'ev.role.guest': 'ゲスト',
    'ev.announce': 'アナウンス', 'ev.announce.ph': '全員に伝えること', 'ev.send': '送る',
    'ev.mute': 'ミュート', 'ev.unmute': 'ミュート解除', 'ev.mute.all': '全員ミュート', 'ev.unmute.all': '全員のミュート解除',
    'ev.move': '移動', 'ev.shuffle': 'テーブルをシャッフル', 'ev.remove': '退出させる', 'ev.remove.why': '理由（相手に表示されます）',
    'ev.lock': '入場を締め切る', 'ev.unlock': '入場を再開', 'ev.spotlight': 'ステージへ', 'ev.spotlight.off': 'ステージから戻す',
    'ev.start': '開始', 'ev.next': '次へ', 'ev.pause': '一時停止', 'ev.resume': '再開', 'ev.end': '終了', 'ev.hands': '挙手',
    'ev.announcement': 'お知らせ', 'ev.muted': '主催者がマイクをミュートしました。', 'ev.unmuted': 'マイクのミュートが解除されました。',
    'ev.moved': 'テーブルを移動しました', 'ev.left': 'イベントから退出しました。', 'ev.locked': '入場締切中', 'ev.stage': 'ステージ中継中',
    'mod.title': 'この人について', 'mod.block': 'ブロック（お互いに見えず聞こえなくなります）', 'mod.unblock': 'ブロック解除',
    'mod.report': '運営に報告', 'mod.reason': '理由（任意）', 'mod.blocked': 'ブロックしました。', 'mod.reported': '運営に報告しました。',
  },
  en: {
    'ev.title': 'Event', 'ev.timer': 'Time left', 'ev.table': 'Your table', 'ev.none': 'none',
    'ev.hand': 'Raise hand', 'ev.hand.down': 'Lower hand', 'ev.leave': 'Leave', 'ev.people': 'People',
    'ev.kind.welcome': 'Welcome (stage)', 'ev.kind.round': 'Table talk', 'ev.kind.qa': 'Q&A', 'ev.kind.closing': 'Closing',
    'ev.phase.scheduled': 'Not started', 'ev.phase.running': 'Running', 'ev.phase.paused': 'Paused', 'ev.phase.ended': 'Ended', 'ev.phase.cancelled': 'Cancelled',
    'ev.role.host': 'Host', 'ev.role.staff': 'Staff', 'ev.role.guest': 'Guest',
    'ev.announce': 'Announce', 'ev.announce.ph': 'What to tell everyone', 'ev.send': 'Send',
    'ev.mute': 'Mute', 'ev.unmute': 'Unmute', 'ev.mute.all': 'Mute everyone', 'ev.unmute.all': 'Unmute everyone',
    'ev.move': 'Move', 'ev.shuffle': 'Shuffle tables', 'ev.remove': 'Remove', 'ev.remove.why': 'Reason (they will see it)',
    'ev.lock': 'Close the doors', 'ev.unlock': 'Open the doors', 'ev.spotlight': 'To the stage', 'ev.spotlight.off': 'Off the stage',
    'ev.start': 'Start', 'ev.next': 'Next', 'ev.pause': 'Pause', 'ev.resume': 'Resume', 'ev.end': 'End', 'ev.hands': 'Hands up',
    'ev.announcement': 'Announcement', 'ev.muted': 'The host muted your microphone.', 'ev.unmuted': 'Your microphone was unmuted.',
    'ev.moved': 'You were moved to a table', 'ev.left': 'You left the event.', 'ev.locked': 'Doors closed', 'ev.stage': 'Stage live',
    'mod.title': 'About this person', 'mod.block': 'Block (you stop seeing and hearing each other)', 'mod.unblock': 'Unblock',
    'mod.report': 'Report to the staff', 'mod.reason': 'Reason (optional)', 'mod.blocked': 'Blocked.', 'mod.reported': 'Reported to the staff.',
  },
};

export function install(app) {
  app.i18n.add(STRINGS);
  const css = Object.assign(document.createElement('link'), { rel: 'stylesheet', href: '/client/events/events.css' });
  document.head.append(css);
  const panel = new EventPanel(app);
  const blocked = new Set();
  let modPanel = null;

  function moderatePanel(hit) {
    modPanel?.dispose();
    const t = (k) => app.i18n.t(k);
    modPanel = app.panel({ title: `${t('mod.title')}: ${hit.label ?? hit.name ?? ''}`, onClose: () => { modPanel = null; } });
    const id = Number(hit.id);
    const block = document.createElement('button');
    block.type = 'button';
    block.textContent = blocked.has(id) ? t('mod.unblock') : t('mod.block');
    block.addEventListener('click', () => {
      const on = !blocked.has(id);
      app.send(app.protocol.moderate(on ? 'block' : 'unblock', id, ''));
      if (on) blocked.add(id); else blocked.delete(id);
      modPanel?.dispose();
    });
    const reason = Object.assign(document.createElement('input'), { type: 'text', maxLength: 300, placeholder: t('mod.reason') });
    const report = document.createElement('button');
    report.type = 'button';
    report.textContent = t('mod.report');
    report.addEventListener('click', () => { app.send(app.protocol.moderate('report', id, reason.value.trim())); modPanel?.dispose(); });
    modPanel.body.append(block, reason, report);
  }

  const undo = [
    app.on('EVENT', (msg) => panel.update(msg.state)),
    app.on('NOTICE', (msg) => {
      panel.notice(msg.kind, msg.data ?? {});
      if (msg.kind === 'event_left') app.conn?.close(); // do not come back in by reconnecting
    }),
    app.on('welcome', () => blocked.clear()),
    app.on('frame', () => panel.tick()),
    app.on('pick', (hit) => {
      if (hit.kind !== 'person') return false;
      moderatePanel(hit);
      return true;
    }),
  ];
  window.emachiEvent = panel;
  return () => {
    for (const off of undo) off?.();
    modPanel?.dispose();
    panel.dispose();
    css.remove();
    delete window.emachiEvent;
  };
}

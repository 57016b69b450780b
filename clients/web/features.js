// Feature modules that plug into the client (see the top of App.js for what `app` offers).
// Each module exports `install(app)` and may return a function (or an object with dispose()) that
// undoes it. A module listed here that is missing on the server is skipped with a warning.
// The kiosk and briefing engineers own the files these paths point to.

// voice before briefing: the narration plays in the voice's AudioContext (app.voiceAudio)
export const FEATURE_MODULES = [
  '/client/kiosk/feature.js',
  '/client/voice/feature.js',
  '/client/briefing/feature.js',
  '/client/events/feature.js',
  '/client/counters/feature.js', // service counters: status, tickets, the booth, the staff desk
];

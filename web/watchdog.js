// Runs first, before megabytes of embedded assets, in any browser that runs scripts at all:
// plain ES5, so that Internet Explorer (also Edge in Internet Explorer mode) runs it too.
// Without it such a browser shows «Starter krypteringsmodulen …» forever (issue 10, point 6):
// the page's own code is a module that it skips. A browser lacking what the page needs is told
// at once; any other start that has not finished after START_TIMEOUT_MS is told then (web/app.js
// replaces the message if the page does become ready after all).
(function () {
  var START_TIMEOUT_MS = 30000;
  var BROWSERS = 'IPLOS Krypt virker i en oppdatert Microsoft Edge eller Google Chrome, ' +
    'ikke i Internet Explorer og ikke i Edge i Internet Explorer-modus.';
  var root = document.documentElement;

  function tell(text, state) {
    var status = document.getElementById('status');
    status.textContent = text;
    status.className = 'status failed';
    root.setAttribute('data-state', state);
  }

  if (window.isSecureContext === false) { // plain http from another machine: no WebCrypto
    tell('IPLOS Krypt må åpnes fra disken (dobbeltklikk filen ipis-krypt.html) eller over https. ' +
      'Lagre filen og åpne den derfra.', 'unsupported');
    return;
  }
  var script = document.createElement('script');
  var supported = 'noModule' in script && typeof window.Worker === 'function' &&
    typeof window.WebAssembly === 'object' && !!window.crypto && !!window.crypto.subtle &&
    typeof window.DecompressionStream === 'function';
  if (!supported) {
    tell('Denne nettleseren kan ikke kjøre IPLOS Krypt. ' + BROWSERS + ' Åpne filen på nytt i en ' +
      'av dem.', 'unsupported');
    return;
  }
  // Tests shorten the wait (a test that breaks the start-up on purpose need not wait 30 s).
  var timeout = window.ipisStartTimeoutMs || START_TIMEOUT_MS;
  window.setTimeout(function () {
    var state = root.getAttribute('data-state');
    if (state === null || state === 'loading') {
      var seconds = Math.ceil(timeout / 1000);
      tell('IPLOS Krypt har ikke startet etter ' + seconds + (seconds === 1 ? ' sekund. ' :
        ' sekunder. ') + BROWSERS + ' Lukk fanen og åpne filen på nytt; kontakt IT hvis det ' +
        'gjentar seg.', 'stalled');
    }
  }, timeout);
}());

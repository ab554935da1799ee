// Runs as soon as the worker's script has been parsed, while the browser still parses the
// megabytes of embedded wasm, Python and memory snapshot that follow: the worker starts
// Pyodide meanwhile, and each asset is handed to it the moment its element has been parsed
// (web/build.py puts a
// ``ipisEarly.send`` after each), so loading overlaps parsing instead of following it.
// web/app.js takes the worker's messages with ``ipisEarly.listen``; until then they wait here.
window.ipisEarly = (() => {
  const root = document.documentElement;
  if (root.dataset.state === 'unsupported') return null; // web/watchdog.js has said why

  function decode(id) {
    const element = document.getElementById(id);
    const text = element.textContent;
    element.textContent = ''; // the DOM need not keep megabytes of base64
    if (Uint8Array.fromBase64) return Uint8Array.fromBase64(text);
    const binary = atob(text);
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes;
  }

  const waiting = []; // messages from the worker before app.js listens
  let listener = null;
  const script = decode('asset-worker');
  // The worker starts at once from this small script, which decompresses the worker's real
  // script there and runs it: the page's thread is busy parsing the megabytes that follow, and
  // decompressing here would wait for it. Messages that come meanwhile wait their turn.
  const boot = `'use strict';
    const early = [];
    self.onmessage = (event) => early.push(event);
    self.addEventListener('message', async function first(event) {
      self.removeEventListener('message', first);
      const stream = new Blob([event.data]).stream().pipeThrough(new DecompressionStream('gzip'));
      const url = URL.createObjectURL(new Blob([await new Response(stream).text()], { type: 'text/javascript' }));
      importScripts(url);
      URL.revokeObjectURL(url);
      for (const queued of early.slice(1)) self.onmessage(queued);
    });`;
  const worker = (async () => {
    const url = URL.createObjectURL(new Blob([boot], { type: 'text/javascript' }));
    const started = new Worker(url);
    URL.revokeObjectURL(url);
    started.onmessage = (event) => (listener ? listener(event.data) : waiting.push(event.data));
    started.postMessage(script.buffer, [script.buffer]);
    started.postMessage({ type: 'start', lock: document.getElementById('pyodide-lock').textContent });
    return started;
  })();
  worker.catch(() => {}); // app.js reports a failure

  return {
    worker,
    send(id, name) {
      const bytes = decode(id);
      worker.then((started) => started.postMessage({ type: 'asset', name, bytes: bytes.buffer }, [bytes.buffer]));
    },
    listen(onMessage) {
      listener = onMessage;
      for (const message of waiting.splice(0)) onMessage(message);
    },
  };
})();

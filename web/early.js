// Runs as soon as the worker's script has been parsed, while the browser still parses the
// megabytes of embedded wasm and Python that follow: the worker starts Pyodide meanwhile, and
// each asset is handed to it the moment its element has been parsed (web/build.py puts a
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
  const worker = (async () => {
    const stream = new Blob([script]).stream().pipeThrough(new DecompressionStream('gzip'));
    const text = await new Response(stream).text();
    const url = URL.createObjectURL(new Blob([text], { type: 'text/javascript' }));
    const started = new Worker(url);
    URL.revokeObjectURL(url);
    started.onmessage = (event) => (listener ? listener(event.data) : waiting.push(event.data));
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

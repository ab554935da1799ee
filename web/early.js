// Runs as soon as the worker's script has been parsed, while the browser still parses the
// megabytes of embedded wasm and Python that follow: the worker starts meanwhile.
window.ipisEarlyWorker = (async () => {
  const element = document.getElementById('asset-worker');
  const text = element.textContent;
  element.textContent = '';
  let bytes;
  if (Uint8Array.fromBase64) {
    bytes = Uint8Array.fromBase64(text);
  } else {
    const binary = atob(text);
    bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  }
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'));
  const script = await new Response(stream).text();
  const url = URL.createObjectURL(new Blob([script], { type: 'text/javascript' }));
  const worker = new Worker(url);
  URL.revokeObjectURL(url);
  return worker;
})();
window.ipisEarlyWorker.catch(() => {}); // app.js reports a failure

// IPLOS Krypt, the page: the form of seed chapter 4, and the worker that runs the ipis core.
//
// Nothing leaves this page: the Content-Security-Policy forbids every connection, the worker
// is made from a blob URL holding embedded code, and the result is saved only by the user's
// own save dialog or as a download.

const appStarted = performance.now();
const $ = (id) => document.getElementById(id);
const root = document.documentElement;
const CONTACT_STORE = 'ipis-krypt-kontaktperson';
const numbers = new Intl.NumberFormat('nb-NO');
const megabytes = new Intl.NumberFormat('nb-NO', { minimumFractionDigits: 1, maximumFractionDigits: 1 });

const state = {
  worker: null,
  ready: false,
  running: null, // { id, outName, handle }
  dataFile: null,
  keysFile: null,
  saveHandle: null, // from the File System Access API's save dialog
  nextId: 1,
  waiting: new Map(), // id -> resolve, for requests that answer once
};

// --- start-up: embedded assets to a worker ---------------------------------------------------

function assetBytes(id) {
  const element = $(id);
  const text = element.textContent;
  element.textContent = ''; // the DOM need not keep megabytes of base64
  if (Uint8Array.fromBase64) return Uint8Array.fromBase64(text);
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

async function startWorker() {
  // web/early.js made the worker while the page was still being parsed.
  const worker = await window.ipisEarlyWorker;
  worker.onmessage = (event) => onWorkerMessage(event.data);
  worker.onerror = (event) => startFailed(event.message || 'arbeidstråden startet ikke');
  const wasm = assetBytes('asset-wasm');
  const python = assetBytes('asset-python');
  worker.postMessage(
    { type: 'start', assets: { wasm: wasm.buffer, python: python.buffer }, lock: $('pyodide-lock').textContent },
    [wasm.buffer, python.buffer],
  );
  state.worker = worker;
  state.workerStarted = Math.round(performance.now());
}

function startFailed(detail) {
  console.error(detail);
  root.dataset.state = 'failed';
  setStatus(
    'IPLOS Krypt kunne ikke starte i denne nettleseren. Bruk en oppdatert Microsoft Edge eller Google Chrome, og åpne filen på nytt.',
    'failed',
  );
}

function onWorkerMessage(message) {
  switch (message.type) {
    case 'ready': {
      state.ready = true;
      const readyMs = Math.round(performance.now());
      root.dataset.readyMs = String(readyMs);
      root.dataset.state = 'ready';
      $('run').disabled = false;
      setStatus('Klar. Fyll ut skjemaet og velg «Utfør kryptering».', 'ready');
      if (state.keysFile) chooseKeysFile(state.keysFile); // chosen while starting
      root.dataset.timings = JSON.stringify({
        appStarted: Math.round(appStarted), workerStarted: state.workerStarted,
        pyodide: Math.round(message.timings.pyodide), core: Math.round(message.timings.core),
      });
      console.info(`IPLOS Krypt klar etter ${readyMs} ms (Python ${message.info.python}): ${root.dataset.timings}`);
      break;
    }
    case 'progress':
      showProgress(message);
      break;
    case 'done':
      finishRun(message);
      break;
    case 'keys':
    case 'modules':
    case 'gcm': {
      const resolve = state.waiting.get(message.id);
      state.waiting.delete(message.id);
      if (resolve) resolve(message);
      break;
    }
    case 'error':
      if (message.during === 'start') startFailed(message.error);
      else if (state.running && message.id === state.running.id) {
        finishRun({ result: { fault: { field: 'form', message: unexpectedMessage() } } });
      } else {
        const resolve = state.waiting.get(message.id);
        state.waiting.delete(message.id);
        if (resolve) resolve(message);
      }
      break;
    default:
      break;
  }
}

function unexpectedMessage() {
  return 'Det oppstod en uventet feil i IPLOS Krypt, og ingen fil er lagret. Last siden på nytt og prøv igjen; kontakt SSB hvis feilen gjentar seg.';
}

function request(message, transfer = []) {
  const id = state.nextId++;
  return new Promise((resolve) => {
    state.waiting.set(id, resolve);
    state.worker.postMessage({ ...message, id }, transfer);
  });
}

// --- form state ------------------------------------------------------------------------------

function setStatus(text, kind = '') {
  const status = $('status');
  status.textContent = text;
  status.className = `status ${kind}`.trim();
}

function today() {
  const now = new Date();
  const pad = (n) => String(n).padStart(2, '0');
  return `${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())}`;
}

function sizeText(bytes) {
  if (bytes < 1e6) return `${numbers.format(bytes)} byte`;
  return `${megabytes.format(bytes / 1e6)} MB (${numbers.format(bytes)} byte)`;
}

const FIELD_INPUTS = {
  data: ['data'],
  out: ['out'],
  keys: ['keys'],
  contact: ['email', 'name', 'mobile'],
  form: [],
};

function clearErrors() {
  for (const field of Object.keys(FIELD_INPUTS)) {
    const error = $(`${field}-error`);
    error.textContent = '';
    error.hidden = true;
    for (const id of FIELD_INPUTS[field]) $(id).removeAttribute('aria-invalid');
  }
  $('announce').textContent = '';
}

function contactInputsFor(message) {
  const empty = ['email', 'name', 'mobile'].filter((id) => !$(id).value.trim());
  if (empty.length) return empty;
  if (message.startsWith('E-post')) return ['email'];
  if (message.startsWith('Navn')) return ['name'];
  if (message.startsWith('Mobil')) return ['mobile'];
  return ['email', 'name', 'mobile'];
}

function showFault(field, message) {
  const known = field in FIELD_INPUTS ? field : 'form';
  const error = $(`${known}-error`);
  error.textContent = message;
  error.hidden = false;
  const inputs = known === 'contact' ? contactInputsFor(message) : FIELD_INPUTS[known];
  for (const id of inputs) $(id).setAttribute('aria-invalid', 'true');
  $('announce').textContent = `Feil: ${message}`;
  root.dataset.lastFault = message;
  if (inputs.length) $(inputs[0]).focus();
}

function outName() {
  const typed = $('out').value.trim();
  return typed.split(/[\\/]/).pop();
}

function rememberContact() {
  try {
    const contact = { email: $('email').value, name: $('name').value, mobile: $('mobile').value };
    localStorage.setItem(CONTACT_STORE, JSON.stringify(contact));
  } catch (error) {
    console.warn('Kontaktpersonen kunne ikke huskes', error);
  }
}

function restoreContact() {
  try {
    const contact = JSON.parse(localStorage.getItem(CONTACT_STORE) || '{}');
    for (const id of ['email', 'name', 'mobile']) {
      if (typeof contact[id] === 'string' && !$(id).value) $(id).value = contact[id];
    }
  } catch (error) {
    console.warn('Kontaktpersonen kunne ikke hentes', error);
  }
}

function chooseDataFile(file) {
  state.dataFile = file || null;
  $('data-chosen').textContent = file ? `Valgt: ${file.name}, ${sizeText(file.size)}` : '';
}

async function chooseKeysFile(file) {
  state.keysFile = file || null;
  const info = $('keys-info');
  info.replaceChildren();
  const error = $('keys-error');
  error.hidden = true;
  $('keys').removeAttribute('aria-invalid');
  if (!file || !state.ready) return;
  const answer = await request({ type: 'inspectKeys', keys: file, today: today() });
  if (state.keysFile !== file) return;
  const result = answer.result || { fault: { field: 'keys', message: 'Nøkkelfilen kunne ikke åpnes.' } };
  if (result.fault) {
    showFault('keys', result.fault.message);
    return;
  }
  for (const line of result.lines) {
    const p = document.createElement('p');
    p.textContent = line;
    info.append(p);
  }
  if (result.warning) {
    const p = document.createElement('p');
    p.className = 'warn';
    p.textContent = `Advarsel: ${result.warning}`;
    info.append(p);
  }
}

// --- a run -----------------------------------------------------------------------------------

function setRunning(running) {
  for (const element of $('form').querySelectorAll('input, button')) element.disabled = running;
  $('progress').hidden = !running;
  root.dataset.state = running ? 'running' : 'ready';
}

function startRun(event) {
  event.preventDefault();
  if (!state.ready || state.running) return;
  clearErrors();
  $('result').hidden = true;
  const name = outName();
  const params = {
    data: Boolean(state.dataFile),
    out: name,
    keys: Boolean(state.keysFile),
    email: $('email').value,
    name: $('name').value,
    mobile: $('mobile').value,
    today: today(),
  };
  const id = state.nextId++;
  const handle = state.saveHandle && state.saveHandle.name === name ? state.saveHandle : null;
  state.running = { id, outName: name, handle, started: performance.now() };
  $('bar').value = 0;
  $('progress-text').textContent = 'Starter …';
  setStatus('Krypterer …');
  setRunning(true);
  $('cancel').focus();
  state.worker.postMessage({ type: 'encrypt', id, params, data: state.dataFile, keys: state.keysFile });
}

function showProgress(message) {
  if (!state.running || message.id !== state.running.id) return;
  const fraction = message.total ? message.bytesRead / message.total : 0;
  $('bar').value = Math.round(fraction * 1000) / 10;
  $('progress-text').textContent =
    `${megabytes.format(message.bytesRead / 1e6)} av ${megabytes.format(message.total / 1e6)} MB lest, ` +
    `${numbers.format(message.persons)} personer`;
}

function cancelRun() {
  if (!state.running) return;
  state.running.cancelled = true;
  state.worker.postMessage({ type: 'cancel' });
  $('progress-text').textContent = 'Avbryter …';
}

async function saveBlob(blob, run) {
  if (run.handle) {
    const writable = await run.handle.createWritable();
    await blob.stream().pipeTo(writable);
    return `${run.handle.name} (lagret der du valgte)`;
  }
  const url = URL.createObjectURL(blob);
  const link = document.createElement('a');
  link.href = url;
  link.download = run.outName;
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 120000);
  return `${run.outName} (lagret i nedlastingsmappen)`;
}

async function finishRun(message) {
  const run = state.running;
  if (!run) return;
  state.running = null;
  root.dataset.runs = String(Number(root.dataset.runs || 0) + 1);
  setRunning(false);
  const result = message.result || {};
  root.dataset.runMs = String(Math.round(performance.now() - run.started));
  if (result.cancelled) {
    setStatus('Krypteringen ble avbrutt. Ingen fil er lagret.', 'failed');
    $('announce').textContent = 'Krypteringen ble avbrutt. Ingen fil er lagret.';
    root.dataset.outcome = 'cancelled';
    $('run').focus();
    return;
  }
  if (result.fault) {
    setStatus('Krypteringen ble stoppet. Ingen fil er lagret.', 'failed');
    root.dataset.outcome = 'fault';
    showFault(result.fault.field, result.fault.message);
    return;
  }
  let where;
  try {
    where = await saveBlob(message.blob, run);
  } catch (error) {
    console.error(error);
    root.dataset.outcome = 'fault';
    setStatus('Krypteringen ble stoppet. Ingen fil er lagret.', 'failed');
    showFault('out', 'Den krypterte filen kunne ikke lagres. Kontroller at mappen finnes og at du har skrivetilgang til den.');
    return;
  }
  rememberContact();
  if (message.timings) {
    const rounded = Object.fromEntries(Object.entries(message.timings).map(([k, v]) => [k, Math.round(v)]));
    root.dataset.runTimings = JSON.stringify(rounded);
  }
  showResult(result.summary, where);
  root.dataset.outcome = 'done';
}

function showResult(summary, where) {
  $('r-persons').textContent = numbers.format(summary.persons);
  $('r-kommune').textContent = summary.kommunenummer;
  $('r-bydel').textContent = summary.bydelsnummer;
  $('r-orgnr').textContent = summary.organisasjonsnummer;
  $('r-file').textContent = where;
  $('r-size').textContent = sizeText(summary.outputBytes);
  $('r-sha256').textContent = summary.sha256;
  const keys = $('r-keys');
  keys.replaceChildren();
  for (const line of summary.keyFileLines) {
    const div = document.createElement('div');
    div.textContent = line;
    keys.append(div);
  }
  const list = $('r-warning-list');
  list.replaceChildren();
  for (const warning of summary.warnings) {
    const item = document.createElement('li');
    item.textContent = warning;
    list.append(item);
  }
  $('r-warnings').hidden = summary.warnings.length === 0;
  const persons = `${numbers.format(summary.persons)} ${summary.persons === 1 ? 'person' : 'personer'}`;
  setStatus(`Krypteringen er utført: ${persons} i filen.`, 'ready');
  $('announce').textContent =
    `Krypteringen er utført. ${persons}.` + (summary.warnings.length ? ` ${summary.warnings.length} advarsel(er).` : '');
  $('result').hidden = false;
  $('result').focus();
}

// --- wiring ----------------------------------------------------------------------------------

function wire() {
  $('form').addEventListener('submit', startRun);
  $('cancel').addEventListener('click', cancelRun);
  $('data').addEventListener('change', () => chooseDataFile($('data').files[0]));
  $('keys').addEventListener('change', () => chooseKeysFile($('keys').files[0]));
  for (const id of ['email', 'name', 'mobile']) $(id).addEventListener('change', rememberContact);
  $('out').addEventListener('input', () => {
    if (state.saveHandle && state.saveHandle.name !== outName()) state.saveHandle = null;
  });

  const drop = $('drop');
  drop.addEventListener('dragover', (event) => {
    event.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (event) => {
    event.preventDefault();
    drop.classList.remove('over');
    const files = event.dataTransfer.files;
    if (!files.length) return;
    try {
      $('data').files = files;
    } catch (error) {
      console.warn(error);
    }
    chooseDataFile(files[0]);
  });
  // A file dropped outside the drop zone must not make the browser navigate away.
  window.addEventListener('dragover', (event) => event.preventDefault());
  window.addEventListener('drop', (event) => event.preventDefault());

  if (typeof window.showSaveFilePicker === 'function') {
    const browse = $('out-browse');
    browse.hidden = false;
    browse.addEventListener('click', async () => {
      try {
        const handle = await window.showSaveFilePicker({
          suggestedName: outName() || (state.dataFile ? `${state.dataFile.name}.kryptert.xml` : 'iplos-kryptert.xml'),
          types: [{ description: 'Kryptert IPLOS-fil', accept: { 'application/xml': ['.xml'] } }],
        });
        state.saveHandle = handle;
        $('out').value = handle.name;
      } catch (error) {
        if (error.name !== 'AbortError') console.warn(error);
      }
    });
  }

  const fingerprint = $('fingerprint');
  const hex = fingerprint.dataset.fingerprint;
  fingerprint.textContent = hex.match(/.{4}/g).join(' ');
  restoreContact();
}

// For the browser tests: the GCM stream against OpenSSL, through the worker.
window.ipisKrypt = {
  gcmSelfTest: (key, iv, chunks) => request({ type: 'gcmSelfTest', key, iv, chunks }),
  modules: () => request({ type: 'modules' }),
};

wire();
root.dataset.state = 'loading';
startWorker().catch((error) => startFailed(String(error)));

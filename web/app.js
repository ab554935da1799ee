// IPLOS Krypt, the page: the form of seed chapter 4, and the worker that runs the ipis core.
//
// Nothing leaves this page: the Content-Security-Policy forbids every connection, the worker
// is made from a blob URL holding embedded code, and the result is saved only by the user's
// own save dialog or as a download. What the page says is what it knows (issue 10): a file is
// «lagret» only when the page closed it itself; everything about the last run goes from the
// screen as soon as the form changes.
//
// Before this file: filename.js (safeFileName), contact.js (contactMemory), save.js
// (ChosenFile, askBrowserToDownload); web/build.py joins them into one module script.

const appStarted = performance.now();
const $ = (id) => document.getElementById(id);
const root = document.documentElement;
const numbers = new Intl.NumberFormat('nb-NO');
const megabytes = new Intl.NumberFormat('nb-NO', { minimumFractionDigits: 1, maximumFractionDigits: 1 });
const READY_TEXT = 'Klar. Fyll ut skjemaet og velg «Utfør kryptering».';

const state = {
  worker: null,
  ready: false,
  running: null, // { id, name, file (ChosenFile or null), started, saveFailed, cancelled }
  dataFile: null,
  keysFile: null,
  saveHandle: null, // from the File System Access API's save dialog
  nextId: 1,
  waiting: new Map(), // id -> resolve, for requests that answer once
  outcomeShown: false, // the status line speaks of the last run
  contactCheck: 0, // the latest contact check asked of the worker
  cipherValueLimit: null, // tests only: a lower limit for the TPF layer (docs/formater.md)
};

// --- start-up: the worker web/early.js made ---------------------------------------------------

async function startWorker() {
  // web/early.js made the worker, and handed it the assets, while the page was being parsed.
  const worker = await window.ipisEarly.worker;
  worker.onerror = (event) => startFailed(event.message || 'arbeidstråden startet ikke');
  state.worker = worker;
  state.workerStarted = Math.round(performance.now());
  window.ipisEarly.listen(onWorkerMessage);
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
      setStatus(READY_TEXT, 'ready');
      if (state.keysFile) chooseKeysFile(state.keysFile); // chosen while starting
      const page = (absolute) => Math.round(absolute - performance.timeOrigin);
      root.dataset.timings = JSON.stringify({
        appStarted: Math.round(appStarted), workerStarted: state.workerStarted,
        pyodide: Math.round(message.timings.pyodide), core: Math.round(message.timings.core),
        workerBooted: page(message.timings.atStart), wasmArrived: page(message.timings.atWasm),
        snapshotArrived: page(message.timings.atSnapshot),
        pythonArrived: page(message.timings.atPython), pyodideLoaded: page(message.timings.atLoaded),
      });
      console.info(`IPLOS Krypt klar etter ${readyMs} ms (Python ${message.info.python}): ${root.dataset.timings}`);
      break;
    }
    case 'progress':
      showProgress(message);
      break;
    case 'output':
      writeOutput(message);
      break;
    case 'done':
      finishRun(message);
      break;
    case 'keys':
    case 'contact':
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
        finishRun({ result: { fault: { field: 'form', message: unexpectedMessage() }, started: true } });
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

// --- what the screen says ----------------------------------------------------------------------

function setStatus(text, kind = '') {
  const status = $('status');
  status.textContent = text;
  status.className = `status ${kind}`.trim();
}

// The status line about a run (or a form that could not start one).
function showOutcome(text, kind) {
  setStatus(text, kind);
  state.outcomeShown = true;
}

// Something the last run was about has changed: its result, its status line and any fault of
// the whole form go, so nothing on screen describes a file that is no longer the one chosen.
function forgetOutcome() {
  if (state.running) return;
  $('result').hidden = true;
  clearFieldError('form');
  if (state.outcomeShown && state.ready) setStatus(READY_TEXT, 'ready');
  state.outcomeShown = false;
  delete root.dataset.outcome;
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

// Text with every number (digits with their separators: 110 000, 52,3, 2026-12-01) in a span
// that does not wrap, so a narrow screen breaks lines between words, never inside a number.
const NUMBER = /\d(?:[\d\u00a0\u202f.,:-]*\d)?/g;

function setTextKeepingNumbers(element, text) {
  element.replaceChildren();
  let at = 0;
  for (const match of text.matchAll(NUMBER)) {
    if (match.index > at) element.append(text.slice(at, match.index));
    const span = document.createElement('span');
    span.className = 'nowrap';
    span.textContent = match[0];
    element.append(span);
    at = match.index + match[0].length;
  }
  if (at < text.length) element.append(text.slice(at));
}

// A SHA-256 as one string (to copy and compare) that may wrap only between groups of eight.
function setHexWrappingInGroups(element, hex) {
  element.replaceChildren();
  for (let i = 0; i < hex.length; i += 8) {
    if (i) element.append(document.createElement('wbr'));
    element.append(hex.slice(i, i + 8));
  }
}

// --- faults next to their fields -----------------------------------------------------------

const FIELD_INPUTS = {
  data: ['data'],
  out: ['out'],
  keys: ['keys'],
  contact: ['email', 'name', 'mobile'],
  form: [],
};

function clearFieldError(field) {
  const error = $(`${field}-error`);
  error.textContent = '';
  error.hidden = true;
  for (const id of FIELD_INPUTS[field]) $(id).removeAttribute('aria-invalid');
}

function clearErrors() {
  for (const field of Object.keys(FIELD_INPUTS)) clearFieldError(field);
  $('announce').textContent = '';
}

// Messages of the seed's style that begin «Feil …» say so themselves: no «Feil: Feil …».
function saysFault(message) {
  return /^feil\b/i.test(message);
}

function contactInputsFor(message) {
  const empty = ['email', 'name', 'mobile'].filter((id) => !$(id).value.trim());
  if (empty.length) return empty;
  if (message.startsWith('E-post')) return ['email'];
  if (message.startsWith('Navn')) return ['name'];
  if (message.startsWith('Mobil')) return ['mobile'];
  return ['email', 'name', 'mobile'];
}

function markInvalid(field, message) {
  for (const id of FIELD_INPUTS[field]) $(id).removeAttribute('aria-invalid');
  const inputs = field === 'contact' ? contactInputsFor(message) : FIELD_INPUTS[field];
  for (const id of inputs) $(id).setAttribute('aria-invalid', 'true');
  return inputs;
}

function showFault(field, message, { focus = true, announce = true } = {}) {
  const known = field in FIELD_INPUTS ? field : 'form';
  const error = $(`${known}-error`);
  error.textContent = message;
  error.classList.toggle('prefixed', !saysFault(message));
  error.hidden = false;
  const inputs = markInvalid(known, message);
  if (announce) $('announce').textContent = saysFault(message) ? message : `Feil: ${message}`;
  root.dataset.lastFault = message;
  if (focus && inputs.length) $(inputs[0]).focus();
}

// --- the fields ----------------------------------------------------------------------------

function typedOutName() {
  return $('out').value.trim();
}

function chooseDataFile(file) {
  forgetOutcome();
  clearFieldError('data');
  state.dataFile = file || null;
  $('data-chosen').textContent = file ? `Valgt: ${file.name}, ${sizeText(file.size)}` : '';
}

async function chooseKeysFile(file) {
  forgetOutcome();
  state.keysFile = file || null;
  $('keys-info').replaceChildren();
  clearFieldError('keys');
  if (!file || !state.ready) return;
  const answer = await request({ type: 'inspectKeys', keys: file, today: today() });
  if (state.keysFile !== file) return;
  const result = answer.result || { fault: { field: 'keys', message: 'Nøkkelfilen kunne ikke åpnes.' } };
  if (result.fault) {
    showFault('keys', result.fault.message, { focus: false });
    return;
  }
  const info = $('keys-info');
  for (const line of result.lines) {
    const p = document.createElement('p');
    setTextKeepingNumbers(p, line);
    info.append(p);
  }
  if (result.warning) {
    const p = document.createElement('p');
    p.className = 'warn';
    setTextKeepingNumbers(p, `Advarsel: ${result.warning}`);
    info.append(p);
  }
}

// A folder dropped where a file belongs is refused at once (it cannot be read as a file).
function droppedFolderName(event) {
  const item = event.dataTransfer.items && event.dataTransfer.items[0];
  const entry = item && item.webkitGetAsEntry ? item.webkitGetAsEntry() : null;
  return entry && entry.isDirectory ? entry.name : null;
}

function folderMessage(name, what) {
  return `«${name}» er en mappe, ikke en fil. Velg ${what} i mappen.`;
}

function readContact() {
  return { email: $('email').value, name: $('name').value, mobile: $('mobile').value };
}

// While the contact person's fault is shown: gone as soon as the fields are right.
async function recheckContact(settled) {
  if (!state.ready || $('contact-error').hidden) return;
  const check = ++state.contactCheck;
  const answer = await request({ type: 'checkContact', ...readContact() });
  if (check !== state.contactCheck || $('contact-error').hidden) return;
  const fault = answer.result && answer.result.fault;
  if (!fault) {
    clearFieldError('contact');
  } else if (settled || fault.message === $('contact-error').textContent) {
    showFault('contact', fault.message, { focus: false, announce: false });
  }
}

// --- the contact person, remembered only with consent ----------------------------------------

function showRemembered() {
  const stored = contactMemory.read();
  $('remembered').hidden = !stored;
  $('remembered-text').textContent = stored ? 'Kontaktpersonen er lagret i denne nettleseren.' : '';
}

function restoreContact() {
  const stored = contactMemory.read();
  if (stored) {
    for (const id of CONTACT_FIELDS) if (!$(id).value) $(id).value = stored[id];
    $('remember').checked = true; // stored only ever with the box ticked
  }
  showRemembered();
}

function forgetContact({ clearFields }) {
  contactMemory.forget();
  $('remember').checked = false;
  if (clearFields) for (const id of CONTACT_FIELDS) $(id).value = '';
  showRemembered();
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
  forgetOutcome();
  // The name the file gets is the name shown: a picked file keeps the name the dialog gave it,
  // a typed name is made safe first and the field shows the result.
  const picked = state.saveHandle && typedOutName() === state.saveHandle.name ? state.saveHandle : null;
  const name = picked ? picked.name : safeFileName(typedOutName());
  if (!picked && name && name !== $('out').value) $('out').value = name;
  const params = {
    data: Boolean(state.dataFile),
    out: name,
    keys: Boolean(state.keysFile),
    ...readContact(),
    today: today(),
    maxCipherValueChars: state.cipherValueLimit,
  };
  const id = state.nextId++;
  state.running = { id, name, file: picked ? new ChosenFile(picked) : null, started: performance.now() };
  $('bar').value = 0;
  $('progress-text').textContent = 'Starter …';
  setStatus('Krypterer …');
  setRunning(true);
  $('cancel').focus();
  state.worker.postMessage({
    type: 'encrypt', id, params, data: state.dataFile, keys: state.keysFile,
    sink: picked ? 'file' : 'blob',
  });
}

function showProgress(message) {
  if (!state.running || message.id !== state.running.id) return;
  const fraction = message.total ? message.bytesRead / message.total : 0;
  $('bar').value = Math.round(fraction * 1000) / 10;
  $('progress-text').textContent =
    `${megabytes.format(message.bytesRead / 1e6)} av ${megabytes.format(message.total / 1e6)} MB lest, ` +
    `${numbers.format(message.persons)} personer`;
}

// A part of the encrypted file, for the file chosen in the save dialog; the worker waits for
// the acknowledgement before it runs far ahead, so memory holds only a few parts.
function writeOutput(message) {
  const run = state.running;
  if (!run || message.id !== run.id || !run.file) return;
  const bytes = message.bytes.byteLength;
  run.file.write(message.bytes).then(() => {
    if (run.file.failure && !run.saveFailed) {
      run.saveFailed = true; // the disk is full or the folder gone: stop encrypting
      state.worker.postMessage({ type: 'cancel' });
    }
    state.worker.postMessage({ type: 'written', id: run.id, bytes });
  });
}

function cancelRun() {
  if (!state.running) return;
  state.running.cancelled = true;
  state.worker.postMessage({ type: 'cancel' });
  $('progress-text').textContent = 'Avbryter …';
}

const SAVE_FAILED =
  'Den krypterte filen kunne ikke lagres. Kontroller at mappen finnes, at det er plass, og at du har skrivetilgang til den.';

async function finishRun(message) {
  const run = state.running;
  if (!run) return;
  const result = message.result || {};
  let saved = null;
  let fault = result.fault || null;
  let removed = true;
  if (result.summary && run.file) {
    $('progress-text').textContent = 'Lagrer filen …';
    try {
      await run.file.close();
      saved = { name: run.name, chosen: true };
    } catch (error) {
      console.error(error);
      fault = { field: 'out', message: SAVE_FAILED };
    }
  } else if (result.summary) {
    askBrowserToDownload(message.blob, run.name);
    saved = { name: run.name, chosen: false };
  } else if (run.saveFailed) {
    fault = { field: 'out', message: SAVE_FAILED };
  }
  const started = result.started !== false;
  if (!saved && run.file && started) {
    removed = await run.file.discard();
    state.saveHandle = null; // its file is gone: the next run asks again or downloads
  }
  state.running = null;
  root.dataset.runs = String(Number(root.dataset.runs || 0) + 1);
  root.dataset.runMs = String(Math.round(performance.now() - run.started));
  setRunning(false);
  const leftOver = removed ? '' : ` Den tomme filen «${run.name}» kunne ikke fjernes; slett den.`;
  if (saved) {
    if (message.timings) {
      const rounded = Object.fromEntries(Object.entries(message.timings).map(([k, v]) => [k, Math.round(v)]));
      root.dataset.runTimings = JSON.stringify(rounded);
    }
    if ($('remember').checked && contactMemory.remember(readContact())) showRemembered();
    showResult(result.summary, saved);
    root.dataset.outcome = 'done';
  } else if (result.cancelled && !run.saveFailed) {
    const text = `Krypteringen ble avbrutt. Ingen fil er lagret.${leftOver}`;
    showOutcome(text, 'failed');
    $('announce').textContent = text;
    root.dataset.outcome = 'cancelled';
    $('run').focus();
  } else {
    fault = fault || { field: 'form', message: unexpectedMessage() };
    showOutcome(
      started
        ? `Krypteringen ble stoppet. Ingen fil er lagret.${leftOver}`
        : 'Krypteringen ble ikke startet. Rett feilen som er merket, og velg «Utfør kryptering» igjen.',
      'failed',
    );
    root.dataset.outcome = 'fault';
    showFault(fault.field, fault.message);
  }
}

function showResult(summary, saved) {
  setTextKeepingNumbers($('r-persons'), numbers.format(summary.persons));
  setTextKeepingNumbers($('r-kommune'), summary.kommunenummer);
  setTextKeepingNumbers($('r-bydel'), summary.bydelsnummer);
  setTextKeepingNumbers($('r-orgnr'), summary.organisasjonsnummer);
  setTextKeepingNumbers($('r-size'), sizeText(summary.outputBytes));
  setHexWrappingInGroups($('r-sha256'), summary.sha256);
  const keys = $('r-keys');
  keys.replaceChildren();
  for (const line of summary.keyFileLines) {
    const div = document.createElement('div');
    setTextKeepingNumbers(div, line);
    keys.append(div);
  }
  const list = $('r-warning-list');
  list.replaceChildren();
  for (const warning of summary.warnings) {
    const item = document.createElement('li');
    setTextKeepingNumbers(item, warning);
    list.append(item);
  }
  $('r-warnings').hidden = summary.warnings.length === 0;
  const persons = `${numbers.format(summary.persons)} ${summary.persons === 1 ? 'person' : 'personer'}`;
  const warned = summary.warnings.length
    ? ` ${summary.warnings.length} ${summary.warnings.length === 1 ? 'advarsel' : 'advarsler'}, se under.`
    : '';
  let title;
  let fileText;
  let status;
  if (saved.chosen) {
    title = 'Krypteringen er utført';
    fileText = `${saved.name} – lagret der du valgte med «Søk…» (filen er skrevet ferdig og lukket).`;
    status = `Krypteringen er utført: ${persons} i filen. Den er lagret som «${saved.name}».${warned}`;
  } else {
    const stem = saved.name.replace(/\.xml$/i, '');
    title = 'Filen er kryptert – kontroller nedlastingen';
    fileText =
      `${saved.name} – nettleseren er bedt om å lagre den i nedlastingsmappen. Kontroller at den er der, ` +
      `med størrelsen under; finnes navnet fra før, gir nettleseren den et annet, for eksempel «${stem} (1).xml».`;
    status =
      `Filen er kryptert: ${persons} i filen. Nettleseren er bedt om å lagre den som «${saved.name}» i ` +
      `nedlastingsmappen; kontroller at den er der.${warned}`;
  }
  $('result-title').textContent = title;
  setTextKeepingNumbers($('r-file'), fileText);
  showOutcome(status, 'ready');
  $('announce').textContent = status;
  $('result').hidden = false;
  $('result').focus();
}

// --- wiring ----------------------------------------------------------------------------------

// Drop targets: the data file's frame and the key file's field each take a file dropped on
// them; a drop anywhere else must not make the browser open the file instead of the page.
function acceptDrops(zone, onFile, what, field) {
  zone.addEventListener('dragover', (event) => {
    event.preventDefault();
    zone.classList.add('over');
  });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (event) => {
    event.preventDefault();
    zone.classList.remove('over');
    if (state.running) return;
    const folder = droppedFolderName(event);
    const input = zone.querySelector('input[type="file"]');
    if (folder !== null) {
      input.value = '';
      onFile(null);
      showFault(field, folderMessage(folder, what), { focus: false });
      return;
    }
    const files = event.dataTransfer.files;
    if (!files.length) return;
    try {
      input.files = files;
    } catch (error) {
      console.warn(error);
    }
    onFile(files[0]);
  });
}

function wire() {
  $('form').addEventListener('submit', startRun);
  $('cancel').addEventListener('click', cancelRun);
  $('data').addEventListener('change', () => chooseDataFile($('data').files[0]));
  $('keys').addEventListener('change', () => chooseKeysFile($('keys').files[0]));
  for (const id of CONTACT_FIELDS) {
    $(id).addEventListener('input', () => {
      forgetOutcome();
      recheckContact(false);
    });
    $(id).addEventListener('change', () => recheckContact(true));
  }
  $('out').addEventListener('input', () => {
    forgetOutcome();
    if (state.saveHandle && state.saveHandle.name !== typedOutName()) state.saveHandle = null;
    if (typedOutName()) clearFieldError('out');
  });
  $('out').addEventListener('change', () => {
    // Shown safe as soon as it is typed (filename.js), unless the save dialog gave it.
    if (state.saveHandle && state.saveHandle.name === typedOutName()) return;
    const name = safeFileName(typedOutName());
    if (name && name !== $('out').value) $('out').value = name;
  });
  $('remember').addEventListener('change', () => {
    if (!$('remember').checked) forgetContact({ clearFields: false });
  });
  $('forget').addEventListener('click', () => {
    forgetContact({ clearFields: true });
    $('remember').focus();
  });

  acceptDrops($('drop'), chooseDataFile, 'IPLOS-datafilen', 'data');
  acceptDrops($('field-keys'), chooseKeysFile, 'filen med krypteringsnøkler', 'keys');
  window.addEventListener('dragover', (event) => event.preventDefault());
  window.addEventListener('drop', (event) => event.preventDefault());

  // Leaving or reloading the page during a run would lose it (and, with the save dialog,
  // leave a half-made file behind): the browser asks first.
  window.addEventListener('beforeunload', (event) => {
    if (!state.running) return;
    event.preventDefault();
    event.returnValue = '';
  });

  if (typeof window.showSaveFilePicker === 'function') {
    const browse = $('out-browse');
    browse.hidden = false;
    browse.addEventListener('click', async () => {
      try {
        const suggested = safeFileName(typedOutName() || (state.dataFile ? `${state.dataFile.name}.kryptert` : 'iplos-kryptert'));
        const handle = await window.showSaveFilePicker({
          suggestedName: suggested,
          types: [{ description: 'Kryptert IPLOS-fil', accept: { 'application/xml': ['.xml'] } }],
        });
        state.saveHandle = handle;
        $('out').value = handle.name;
        forgetOutcome();
        clearFieldError('out');
      } catch (error) {
        if (error.name !== 'AbortError') console.warn(error);
      }
    });
  }
  restoreContact();
}

// For the browser tests: the GCM stream against OpenSSL, through the worker; a lower size
// limit for the TPF layer, so the limit can be tested on a small file.
window.ipisKrypt = {
  gcmSelfTest: (key, iv, chunks) => request({ type: 'gcmSelfTest', key, iv, chunks }),
  modules: () => request({ type: 'modules' }),
  lowerCipherValueLimitForTests: (chars) => {
    state.cipherValueLimit = chars;
  },
};

if (root.dataset.state !== 'unsupported') { // web/watchdog.js found what the page needs
  wire();
  if (!root.dataset.state) root.dataset.state = 'loading';
  startWorker().catch((error) => startFailed(String(error)));
}

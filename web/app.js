// haarseek search page: plain ES module, no build step. Talks to the JSON API:
//   GET  api/v1/status
//   POST api/v1/spaces/{space}/search?numres=N&ranking=R   (body: the image bytes)
// Errors come back as { error: { code, fault, message } } with an HTTP status >= 400.

const STATUS_URL = 'api/v1/status';
const STATUS_EVERY_MS = 15_000;
const SPACE_KEY = 'haarseek.space';

const $ = (selector, root = document) => root.querySelector(selector);

const els = {
  form: $('#search-form'),
  drop: $('#drop'),
  file: $('#file'),
  previewBox: $('#preview-box'),
  preview: $('#preview'),
  previewName: $('#preview-name'),
  space: $('#space'),
  numres: $('#numres'),
  ranking: $('#ranking'),
  button: $('#search'),
  error: $('#error'),
  results: $('#results'),
  summary: $('#results-summary'),
  status: $('#status'),
};

/** @type {{ imageUrlTemplate: string|null, ranking?: string } | null} */
let lastStatus = null;
/** @type {Blob|null} */
let currentImage = null;
let previewUrl = null;
let searchController = null;

// ---------- API ----------

class ApiError extends Error {
  constructor(message, code, status) {
    super(message);
    this.code = code;
    this.status = status;
  }
}

async function api(url, init) {
  let response;
  try {
    response = await fetch(url, { headers: { Accept: 'application/json' }, ...init });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(`Cannot reach the server (${e.message}). Check your connection and try again.`, 'network', 0);
  }
  const text = await response.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (!response.ok) {
    const err = body && body.error;
    if (err && typeof err.message === 'string') throw new ApiError(err.message, err.code ?? null, response.status);
    const reason = response.statusText ? ` ${response.statusText}` : '';
    throw new ApiError(`The server answered HTTP ${response.status}${reason}.`, null, response.status);
  }
  if (body === null) throw new ApiError('The server sent an answer that is not JSON.', null, response.status);
  return body;
}

// ---------- errors ----------

function showError(error) {
  if (error == null) {
    els.error.hidden = true;
    els.error.textContent = '';
    delete els.error.dataset.code;
    return;
  }
  const message = error instanceof Error ? error.message : String(error);
  els.error.textContent = message;
  if (error.code) els.error.dataset.code = error.code;
  else delete els.error.dataset.code;
  els.error.hidden = false;
}

// ---------- status ----------

function formatAge(ms) {
  if (ms == null) return 'no snapshot yet';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  const m = s / 60;
  if (m < 60) return `${m.toFixed(0)} min`;
  const h = m / 60;
  if (h < 48) return `${h.toFixed(1)} h`;
  return `${(h / 24).toFixed(0)} days`;
}

function setField(name, text) {
  const el = els.status.querySelector(`[data-field="${name}"]`);
  if (el) el.textContent = text;
  return el;
}

function renderStatus(status) {
  lastStatus = status;
  els.status.querySelector('[data-field="loading"]').hidden = true;
  els.status.querySelector('.facts').hidden = false;
  setField('role', status.role ?? '—');
  setField('engine', status.engine ?? '—');
  setField('version', status.version ?? '—');
  setField('pid', status.pid != null ? `pid ${status.pid}` : '—');

  const fresh = setField('freshness', '');
  const badge = document.createElement('span');
  badge.className = status.stale ? 'badge bad' : 'badge good';
  badge.textContent = status.stale ? 'stale' : 'fresh';
  fresh.append(badge, ` snapshot ${status.snapshotAgeMs == null ? '—' : `${formatAge(status.snapshotAgeMs)} old`}`);
  els.status.dataset.stale = String(Boolean(status.stale));

  const spaces = Array.isArray(status.spaces) ? status.spaces : [];
  const table = els.status.querySelector('table.spaces');
  const tbody = table.tBodies[0];
  tbody.replaceChildren(
    ...spaces.map((space) => {
      const tr = document.createElement('tr');
      tr.dataset.space = String(space.id);
      const id = document.createElement('td');
      id.textContent = String(space.id);
      const images = document.createElement('td');
      images.className = 'num';
      images.textContent = Number(space.images).toLocaleString();
      tr.append(id, images);
      return tr;
    }),
  );
  if (spaces.length === 0) {
    const tr = document.createElement('tr');
    const td = document.createElement('td');
    td.colSpan = 2;
    td.className = 'muted';
    td.textContent = 'No spaces yet.';
    tr.append(td);
    tbody.append(tr);
  }
  table.hidden = false;
  els.status.querySelector('[data-heading="spaces"]').hidden = false;

  const readers = Array.isArray(status.readers) ? status.readers : null;
  const list = els.status.querySelector('ul.readers');
  const readersHeading = els.status.querySelector('[data-heading="readers"]');
  list.hidden = readersHeading.hidden = !readers;
  if (readers) {
    list.replaceChildren(
      ...readers.map((reader) => {
        const li = document.createElement('li');
        li.dataset.state = String(reader.state);
        const name = document.createElement('span');
        name.className = 'reader-name';
        name.textContent = reader.name;
        const state = document.createElement('span');
        state.className = `badge ${/^(up|ok|ready|healthy|running)$/i.test(reader.state) ? 'good' : 'bad'}`;
        state.textContent = reader.state;
        const url = document.createElement('span');
        url.className = 'muted reader-url';
        url.textContent = reader.url;
        li.append(name, ' ', state, ' ', url);
        return li;
      }),
    );
  }

  fillSpaces(spaces);
  if (status.ranking && !els.ranking.dataset.touched) els.ranking.value = status.ranking;
}

function fillSpaces(spaces, emptyLabel = 'No spaces yet') {
  const previous = els.space.value || localStorage.getItem(SPACE_KEY) || '';
  const ids = spaces.map((s) => String(s.id));
  const same = ids.length === els.space.options.length && ids.every((id, i) => els.space.options[i].value === id);
  if (!same) {
    els.space.replaceChildren(
      ...spaces.map((s) => {
        const option = document.createElement('option');
        option.value = String(s.id);
        option.textContent = `${s.id} (${Number(s.images).toLocaleString()} images)`;
        return option;
      }),
    );
  } else {
    spaces.forEach((s, i) => {
      els.space.options[i].textContent = `${s.id} (${Number(s.images).toLocaleString()} images)`;
    });
  }
  if (spaces.length === 0) {
    const option = document.createElement('option');
    option.value = '';
    option.textContent = emptyLabel;
    els.space.replaceChildren(option);
    els.space.disabled = true;
  } else {
    els.space.disabled = false;
    if (ids.includes(previous)) els.space.value = previous;
  }
  updateButton();
}

async function loadStatus() {
  try {
    renderStatus(await api(STATUS_URL));
    if (els.error.dataset.code === 'network' || els.error.dataset.code === 'status') showError(null);
  } catch (e) {
    const message = `Could not load the server status: ${e.message}`;
    if (!lastStatus) {
      els.status.querySelector('[data-field="loading"]').textContent = 'Status unavailable; retrying every 15 s.';
      fillSpaces([], 'Unavailable');
    }
    showError(Object.assign(new Error(message), { code: e.code === 'network' ? 'network' : 'status' }));
  }
}

// ---------- image input ----------

function useImage(blob, name) {
  if (!blob) return;
  if (blob.size === 0) {
    showError(new Error(`“${name || 'The file'}” is empty (0 bytes). Choose another image.`));
    return;
  }
  currentImage = blob;
  if (previewUrl) URL.revokeObjectURL(previewUrl);
  previewUrl = URL.createObjectURL(blob);
  els.preview.src = previewUrl;
  els.previewName.textContent = `${name || 'pasted image'} · ${formatBytes(blob.size)}`;
  els.previewBox.hidden = false;
  els.drop.classList.add('has-image');
  showError(null);
  updateButton();
  runSearch();
}

function formatBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(0)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

// #file may open the camera directly on phones (capture="environment"); #file-any is
// the same picker without that hint, offered on touch screens for the photo library.
for (const input of [els.file, $('#file-any')]) {
  input.addEventListener('change', () => {
    const file = input.files && input.files[0];
    if (file) useImage(file, file.name);
  });
}

for (const type of ['dragenter', 'dragover']) {
  els.drop.addEventListener(type, (event) => {
    if (!event.dataTransfer || ![...event.dataTransfer.types].includes('Files')) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = 'copy';
    els.drop.classList.add('dragging');
  });
}
for (const type of ['dragleave', 'dragend']) {
  els.drop.addEventListener(type, (event) => {
    if (event.target === els.drop || !els.drop.contains(event.relatedTarget)) els.drop.classList.remove('dragging');
  });
}
els.drop.addEventListener('drop', (event) => {
  event.preventDefault();
  els.drop.classList.remove('dragging');
  const file = event.dataTransfer && event.dataTransfer.files[0];
  if (file) useImage(file, file.name);
});
// A file dropped outside the zone must not navigate away from the page.
window.addEventListener('dragover', (event) => event.preventDefault());
window.addEventListener('drop', (event) => event.preventDefault());

document.addEventListener('paste', (event) => {
  const items = event.clipboardData ? [...event.clipboardData.items] : [];
  const item = items.find((i) => i.kind === 'file' && i.type.startsWith('image/'));
  if (!item) return;
  event.preventDefault();
  const file = item.getAsFile();
  if (file) useImage(file, file.name && file.name !== 'image.png' ? file.name : 'pasted image');
});

// ---------- search ----------

function updateButton() {
  els.button.disabled = !currentImage || !els.space.value;
}

function thumbnailUrl(id) {
  const template = lastStatus && lastStatus.imageUrlTemplate;
  if (!template) return null;
  return template.split('{id}').join(encodeURIComponent(String(id)));
}

function formatScore(score) {
  return Number.isFinite(score) ? score.toFixed(Math.abs(score) >= 100 ? 1 : 2) : String(score);
}

function renderResults(answer) {
  const results = Array.isArray(answer.results) ? answer.results : [];
  const top = results.reduce((m, r) => Math.max(m, Number(r.score) || 0), 0) || 1;
  els.results.classList.toggle('no-thumbs', !thumbnailUrl(0));
  els.results.replaceChildren(
    ...results.map((result, index) => {
      const li = document.createElement('li');
      li.dataset.id = String(result.id);
      li.dataset.score = String(result.score);
      li.className = 'result';

      const url = thumbnailUrl(result.id);
      if (url) {
        const img = document.createElement('img');
        img.className = 'thumb';
        img.loading = 'lazy';
        img.decoding = 'async';
        img.alt = `image ${result.id}`;
        img.src = url;
        img.addEventListener('error', () => img.replaceWith(placeholder()), { once: true });
        li.append(img);
      }

      const text = document.createElement('div');
      text.className = 'result-text';
      const rank = document.createElement('span');
      rank.className = 'rank';
      rank.textContent = `#${index + 1}`;
      const id = document.createElement('span');
      id.className = 'result-id';
      id.textContent = `id ${result.id}`;
      const score = document.createElement('span');
      score.className = 'score';
      const scoreLabel = document.createElement('span');
      scoreLabel.className = 'sr-only';
      scoreLabel.textContent = 'score ';
      score.append(scoreLabel, formatScore(Number(result.score)));
      score.title = `score ${result.score}`;
      const bar = document.createElement('span');
      bar.className = 'bar';
      bar.setAttribute('aria-hidden', 'true');
      bar.style.setProperty('--w', `${Math.max(0, Math.min(1, Number(result.score) / top)) * 100}%`);
      text.append(rank, id, score, bar);
      li.append(text);
      return li;
    }),
  );
  const took = Number.isFinite(answer.tookMs) ? ` in ${Math.round(answer.tookMs)} ms` : '';
  const where = answer.space != null ? ` from space ${answer.space}` : '';
  const how = answer.ranking ? `, ${answer.ranking} ranking` : '';
  els.summary.textContent = results.length === 0
    ? `No similar images found${where}.`
    : `${results.length} result${results.length === 1 ? '' : 's'}${where}${took}${how}.`;
}

/** Shown where a thumbnail could not be loaded. */
function placeholder() {
  const span = document.createElement('span');
  span.className = 'thumb thumb-none';
  span.textContent = 'no preview';
  return span;
}

async function runSearch() {
  if (!currentImage) {
    showError(new Error('Choose an image first.'));
    return;
  }
  const space = els.space.value;
  if (!space) {
    showError(new Error('There is no space to search: add images to a space first.'));
    return;
  }
  const numres = Number.parseInt(els.numres.value, 10);
  if (!Number.isInteger(numres) || numres < 1) {
    showError(new Error('“Results” must be a whole number of at least 1.'));
    els.numres.focus();
    return;
  }
  localStorage.setItem(SPACE_KEY, space);
  if (searchController) searchController.abort();
  const controller = new AbortController();
  searchController = controller;

  const params = new URLSearchParams({ numres: String(numres), ranking: els.ranking.value });
  const url = `api/v1/spaces/${encodeURIComponent(space)}/search?${params}`;
  els.results.setAttribute('aria-busy', 'true');
  els.form.classList.add('busy');
  els.summary.textContent = 'Searching…';
  showError(null);
  try {
    const answer = await api(url, {
      method: 'POST',
      body: currentImage,
      headers: { Accept: 'application/json', 'Content-Type': currentImage.type || 'application/octet-stream' },
      signal: controller.signal,
    });
    if (controller !== searchController) return;
    renderResults(answer);
  } catch (e) {
    if (e.name === 'AbortError') return;
    els.results.replaceChildren();
    els.summary.textContent = 'The search failed.';
    showError(e);
    if (e.code === 'unknownSpace') loadStatus();
  } finally {
    if (controller === searchController) {
      searchController = null;
      els.results.setAttribute('aria-busy', 'false');
      els.form.classList.remove('busy');
    }
  }
}

els.form.addEventListener('submit', (event) => {
  event.preventDefault();
  runSearch();
});
els.space.addEventListener('change', () => {
  updateButton();
  if (currentImage) runSearch();
});
els.ranking.addEventListener('change', () => {
  els.ranking.dataset.touched = '1';
  if (currentImage) runSearch();
});

// ---------- start ----------

updateButton();
loadStatus();
setInterval(() => {
  if (document.visibilityState === 'visible') loadStatus();
}, STATUS_EVERY_MS);
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible') loadStatus();
});

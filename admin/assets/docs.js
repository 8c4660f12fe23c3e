// The admin API explorer: loads openapi.json from this directory, lists the
// operations by tag and sends requests with fetch. It builds the DOM with
// textContent only (never innerHTML), keeps the token in memory only (never
// in storage or a cookie) and sends it as Authorization: Bearer, and uses
// relative URLs so that it works wherever the admin API is mounted. The page
// and openapi.json are open; the requests it sends need the token.
(function () {
  'use strict';

  const base = new URL('.', window.location.href);
  const methods = ['get', 'post', 'put', 'delete'];
  let token = '';
  let spec = null;

  function el(tag, props, children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v === undefined || v === null) continue;
      if (k === 'text') e.textContent = v;
      else if (k === 'class') e.className = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v);
    }
    for (const c of children || []) {
      if (c !== null && c !== undefined) e.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
    }
    return e;
  }

  function message(text, isError) {
    const m = document.getElementById('message');
    m.textContent = text;
    m.className = isError ? 'error' : 'muted';
  }

  function deref(obj) {
    let seen = 0;
    while (obj && obj.$ref && seen++ < 16) {
      const parts = obj.$ref.replace(/^#\//, '').split('/');
      obj = parts.reduce((o, p) => (o ? o[p.replace(/~1/g, '/').replace(/~0/g, '~')] : undefined), spec);
    }
    return obj || {};
  }

  function authHeaders() {
    return token ? { Authorization: 'Bearer ' + token } : {};
  }

  async function loadSpec() {
    message('Loading openapi.json…');
    document.getElementById('operations').replaceChildren();
    document.getElementById('toc').replaceChildren();
    let res;
    try {
      res = await fetch(new URL('openapi.json', base), { headers: authHeaders(), cache: 'no-store', credentials: 'same-origin' });
    } catch (err) {
      message('Could not load openapi.json: ' + err, true);
      return;
    }
    if (!res.ok) {
      let detail = '';
      try { detail = (await res.json()).detail || ''; } catch (e) { /* not JSON */ }
      message('openapi.json answered ' + res.status + (detail ? ': ' + detail : '') +
        (res.status === 401 ? ' — enter the admin token above.' : ''), true);
      return;
    }
    spec = await res.json();
    render();
    message('');
  }

  function operations() {
    const byTag = new Map();
    for (const t of spec.tags || []) byTag.set(t.name, { tag: t, ops: [] });
    for (const [path, item] of Object.entries(spec.paths || {})) {
      for (const m of methods) {
        const op = item[m];
        if (!op) continue;
        const tagName = (op.tags && op.tags[0]) || 'other';
        if (!byTag.has(tagName)) byTag.set(tagName, { tag: { name: tagName }, ops: [] });
        const params = (item.parameters || []).concat(op.parameters || []).map(deref);
        byTag.get(tagName).ops.push({ path, method: m, op, params });
      }
    }
    return byTag;
  }

  function render() {
    document.getElementById('title').textContent = (spec.info && spec.info.title) || 'API';
    document.getElementById('description').textContent = (spec.info && spec.info.description) || '';
    const toc = document.getElementById('toc');
    const main = document.getElementById('operations');
    for (const { tag, ops } of operations().values()) {
      if (!ops.length) continue;
      const anchor = 'tag-' + tag.name;
      toc.appendChild(el('a', { href: '#' + anchor, text: tag.name }));
      main.appendChild(el('h2', { id: anchor, text: tag.name }));
      if (tag.description) main.appendChild(el('p', { class: 'muted', text: tag.description }));
      for (const o of ops) main.appendChild(renderOperation(o));
    }
  }

  function exampleBody(op) {
    const body = deref(op.requestBody);
    const content = body.content || {};
    const type = Object.keys(content)[0];
    if (!type) return null;
    const media = content[type];
    let ex = media.example;
    if (ex === undefined && media.examples) {
      const first = Object.values(media.examples)[0];
      ex = first && deref(first).value;
    }
    if (ex === undefined) ex = deref(media.schema).example;
    const text = ex === undefined ? '' : typeof ex === 'string' ? ex : JSON.stringify(ex, null, 2);
    return { type, text, required: !!body.required };
  }

  function renderOperation({ path, method, op, params }) {
    const inputs = {};
    const fields = [];
    for (const p of params) {
      const id = 'p-' + method + '-' + path + '-' + p.in + '-' + p.name;
      const schema = deref(p.schema);
      const input = el('input', {
        id,
        name: p.name,
        placeholder: p.example !== undefined ? String(p.example) : schema.example !== undefined ? String(schema.example) : '',
        required: p.required ? 'required' : null,
        autocomplete: 'off',
        spellcheck: 'false',
      });
      inputs[p.in + ':' + p.name] = { input, param: p };
      fields.push(el('div', { class: 'field' }, [
        el('label', { for: id }, [p.name + ' (' + p.in + (p.required ? ', required' : '') + ')',
          p.description ? el('small', { text: p.description }) : null]),
        input,
      ]));
    }
    const body = exampleBody(op);
    let textarea = null;
    if (body) {
      const id = 'b-' + method + '-' + path;
      textarea = el('textarea', { id, spellcheck: 'false' });
      textarea.value = body.text;
      fields.push(el('div', { class: 'field' }, [
        el('label', { for: id }, ['body', el('small', { text: body.type })]),
        textarea,
      ]));
    }
    const result = el('div', { class: 'result' });
    const send = el('button', { type: 'submit', class: 'send', text: 'Send ' + method.toUpperCase() });
    const form = el('form', {
      onsubmit: (ev) => {
        ev.preventDefault();
        sendRequest({ path, method, inputs, textarea, body, result });
      },
    }, fields.concat([send]));
    const isOpen = Array.isArray(op.security) && op.security.length === 0;
    return el('details', { class: 'op' }, [
      el('summary', {}, [
        el('span', { class: 'method m-' + method, text: method.toUpperCase() }),
        el('code', { class: 'path', text: path }),
        el('span', { class: 'summary', text: op.summary || '' }),
        isOpen ? el('span', { class: 'open', text: 'no auth' }) : null,
      ]),
      el('div', {}, [
        op.description ? el('p', { text: op.description }) : null,
        form,
        result,
      ]),
    ]);
  }

  // buildURL fills the path template. A parameter marked x-multi-segment
  // (the /router/debug path) keeps its slashes, and whatever follows a "?"
  // in it becomes the query string verbatim.
  function buildURL(path, inputs) {
    let extraQuery = '';
    let missing = null;
    const filled = path.replace(/\{([^}]+)\}/g, (_, name) => {
      const entry = inputs['path:' + name];
      let v = entry ? entry.input.value : '';
      if (entry && entry.param['x-multi-segment']) {
        const q = v.indexOf('?');
        if (q >= 0) { extraQuery = v.slice(q + 1); v = v.slice(0, q); }
        return v.replace(/^\/+/, '').split('/').map(encodeURIComponent).join('/');
      }
      if (v === '') missing = missing || name;
      return encodeURIComponent(v);
    });
    const query = new URLSearchParams();
    for (const { input, param } of Object.values(inputs)) {
      if (param.in === 'query' && input.value !== '') query.append(param.name, input.value);
    }
    let qs = query.toString();
    if (extraQuery) qs = qs ? extraQuery + '&' + qs : extraQuery;
    return { url: new URL(filled.slice(1) + (qs ? '?' + qs : ''), base), missing };
  }

  async function sendRequest({ path, method, inputs, textarea, body, result }) {
    const { url, missing } = buildURL(path, inputs);
    result.replaceChildren();
    if (missing) {
      result.appendChild(el('p', { class: 'error', text: 'Fill in the path parameter "' + missing + '".' }));
      return;
    }
    const headers = authHeaders();
    for (const { input, param } of Object.values(inputs)) {
      if (param.in === 'header' && input.value !== '') headers[param.name] = input.value;
    }
    const init = { method: method.toUpperCase(), headers, cache: 'no-store', credentials: 'same-origin', redirect: 'manual' };
    if (textarea && textarea.value !== '') {
      headers['Content-Type'] = body.type;
      init.body = textarea.value;
    }
    const started = performance.now();
    let res;
    try {
      res = await fetch(url, init);
    } catch (err) {
      result.appendChild(el('p', { class: 'error', text: 'Request failed: ' + err }));
      return;
    }
    const ms = Math.round(performance.now() - started);
    const text = await res.text();
    let shown = text;
    const type = res.headers.get('Content-Type') || '';
    if (type.includes('json') && text) {
      try { shown = JSON.stringify(JSON.parse(text), null, 2); } catch (e) { /* show as is */ }
    }
    if (shown.length > 200000) shown = shown.slice(0, 200000) + '\n… (truncated)';
    const headerLines = [];
    res.headers.forEach((v, k) => headerLines.push(k + ': ' + v));
    result.append(
      el('p', {}, [
        el('span', { class: res.ok ? 'status-ok' : 'status-err', text: res.status + ' ' + res.statusText }),
        ' ' + init.method + ' ' + url.pathname + url.search + ' — ' + ms + ' ms',
        res.status === 401 ? el('span', { class: 'error', text: token ? ' — the token was refused' : ' — enter the admin token above' }) : null,
      ]),
      el('pre', { text: headerLines.join('\n') }),
      el('pre', { text: shown || '(empty body)' }),
    );
  }

  document.getElementById('auth').addEventListener('submit', (ev) => {
    ev.preventDefault();
    token = document.getElementById('token').value.trim();
    loadSpec();
  });
  document.getElementById('forget').addEventListener('click', () => {
    token = '';
    document.getElementById('token').value = '';
    message('Token forgotten.');
  });
  loadSpec();
})();

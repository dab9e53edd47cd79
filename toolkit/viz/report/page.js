(function () {
  const data = JSON.parse(document.getElementById('report-data').textContent);
  const panels = JSON.parse(document.getElementById('panel-data').textContent);
  const CONFIG = {displaylogo: false, responsive: true};
  const ENTITIES = {lt: '<', gt: '>', quot: '"', '#x27': "'", amp: '&'};
  const ESCAPES = {'<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#x27;', '&': '&amp;'};
  function escapeHtml(s) { return String(s).replace(/[<>"'&]/g, function (c) { return ESCAPES[c]; }); }
  function unescapeHtml(s) {
    return String(s).replace(/&(lt|gt|quot|#x27|amp);/g, function (m, e) { return ENTITIES[e]; });
  }
  function fromBase64(text) {
    if (Uint8Array.fromBase64) return Uint8Array.fromBase64(text);
    const chars = atob(text), bytes = new Uint8Array(chars.length);
    for (let i = 0; i < chars.length; i++) bytes[i] = chars.charCodeAt(i);
    return bytes;
  }
  async function gunzip(base64) {
    const bytes = fromBase64(base64.trim());
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'));
    return new Response(stream).text();
  }
  function plot(holder, spec) {
    if (!spec.layout.template) spec.layout.template = data.template;
    const div = document.createElement('div');
    div.className = 'plotly-graph-div lazy-figure';
    holder.appendChild(div);
    return plotly.then(function (P) { return P.newPlot(div, spec.data, spec.layout, CONFIG); });
  }
  function draw(root) {
    root.querySelectorAll('script.fig-json').forEach(function (s) {
      if (s.dataset.drawn || s.closest('[hidden]')) return;
      s.dataset.drawn = '1';
      plot(s.parentNode, JSON.parse(s.textContent));
    });
  }
  function table(id) {
    if (!document.getElementById(id)) return Promise.resolve(null);
    return window[data.itables_key].then(function (mod) {
      const $ = mod.jQuery;
      return new Promise(function (resolve) {
        if ($.fn.dataTable.isDataTable('#' + id)) resolve($('#' + id).DataTable());
        else $('#' + id).one('init.dt', function () { resolve($('#' + id).DataTable()); });
      });
    });
  }
  // A table with its rows: they are stored packed beside it and added once it is initialised.
  const loadedTables = {};
  function loaded(id) {
    if (!(id in loadedTables)) {
      loadedTables[id] = table(id).then(async function (dt) {
        const packed = document.getElementById(id + '-rows');
        if (dt && packed) dt.rows.add(JSON.parse(await gunzip(packed.textContent))).draw();
        return dt;
      });
    }
    return loadedTables[id];
  }
  loaded('findings-table');
  loaded('traces-table');
  // plotly.js is unpacked once both tables hold their rows: on a busy machine the tables,
  // what a reader reaches for first, are ready sooner
  const plotly = Promise.all([loaded('findings-table'), loaded('traces-table')]).then(function () {
    return gunzip(document.getElementById('plotly-gz').textContent);
  }).then(function (src) {
    const s = document.createElement('script');
    s.textContent = src;
    document.head.appendChild(s);
    return window.Plotly;
  });
  function text(tag, content, className) {
    const el = document.createElement(tag);
    el.textContent = content;
    if (className) el.className = className;
    return el;
  }
  function cellText(v) { return unescapeHtml(Array.isArray(v) ? v[0] : v === null ? '' : v); }
  async function rowsOf(id, tid) {
    const dt = await loaded(id);
    if (!dt) return [];
    const key = escapeHtml(tid), col = data.trace_column[id];
    return dt.rows().data().toArray().filter(function (r) { return r[col] === key; });
  }
  // A trace without an embedded panel: its row of the trace table and its findings, and how
  // to write a report with its full panel.
  async function missingPanel(tid) {
    const box = document.createElement('div');
    box.className = 'panel-head missing-panel';
    box.appendChild(text('h3', 'Trace ' + tid));
    box.appendChild(text('p', 'No span tree or transcript is embedded for this trace: the ' +
      'report holds them for ' + data.n_panels + ' traces (those on the first page of each ' +
      'table, the most severe, then in list order). Its row and findings are below; for its ' +
      'full panel, write a report with: toolkit report --trace-id ' + JSON.stringify(tid), 'note'));
    const row = (await rowsOf('traces-table', tid))[0];
    if (row === undefined) {
      box.appendChild(text('p', 'No trace with this id is listed in this report.', 'note'));
      return box;
    }
    const dl = document.createElement('dl');
    data.columns['traces-table'].forEach(function (name, i) {
      dl.appendChild(text('dt', name));
      dl.appendChild(text('dd', cellText(row[i])));
    });
    box.appendChild(dl);
    const found = await rowsOf('findings-table', tid);
    box.appendChild(text('h4', 'Findings (' + found.length + ')'));
    if (found.length) {
      const names = data.columns['findings-table'];
      const tbl = document.createElement('table');
      tbl.className = 'tbl';
      const head = tbl.createTHead().insertRow();
      names.forEach(function (n) { head.appendChild(text('th', n)); });
      const body = tbl.createTBody();
      found.forEach(function (r) {
        const tr = body.insertRow();
        names.forEach(function (n, i) {
          tr.appendChild(text('td', i === 0 ? data.severities[r[0] - 1] : cellText(r[i])));
        });
      });
      box.appendChild(tbl);
    }
    return box;
  }
  let opening = 0;
  async function openTrace(tid, scroll) {
    const ticket = ++opening;
    const i = data.panels[tid];
    const spec = i === undefined ? null : JSON.parse(await gunzip(panels[i]));
    const missing = spec === null ? await missingPanel(tid) : null;
    if (ticket !== opening) return;  // another trace was asked for meanwhile
    const panel = document.getElementById('trace-panel');
    panel.replaceChildren();
    panel.dataset.trace = tid;
    if (spec === null) {
      panel.appendChild(missing);
    } else {
      const t = document.createElement('template');
      t.innerHTML = spec.html;
      panel.appendChild(t.content);
      panel.querySelectorAll('[data-figure]').forEach(function (holder) {
        plot(holder, spec.figures[Number(holder.dataset.figure)]);
      });
    }
    if (scroll) panel.scrollIntoView({block: 'start'});
  }
  function fromHash(scroll) {
    const m = location.hash.match(/^#trace=(.*)$/);
    if (m) openTrace(decodeURIComponent(m[1]), scroll);
  }
  window.addEventListener('hashchange', function () { fromHash(true); });
  function showSystem(i) {
    document.querySelectorAll('.sys-section').forEach(function (s) {
      s.hidden = s.dataset.sys !== String(i);
    });
    draw(document.body);
  }
  const picker = document.getElementById('system-picker');
  function bySystem(settings, row, i, raw) {
    const col = data.system_column[settings.nTable.id];
    return col === undefined || raw[col] === data.systems[Number(picker.value)];
  }
  if (picker) {
    picker.addEventListener('change', async function () {
      const v = picker.value;
      showSystem(v === '' ? data.default_system : v);
      const mod = await window[data.itables_key];
      // the filter is there only while a system is picked: it runs on every row at each draw
      const filters = mod.jQuery.fn.dataTable.ext.search;
      const at = filters.indexOf(bySystem);
      if (v === '' && at >= 0) filters.splice(at, 1);
      if (v !== '' && at < 0) filters.push(bySystem);
      mod.jQuery('table.report-table').each(function () {
        mod.jQuery(this).DataTable().draw();
      });
    });
  }
  const narrow = window.matchMedia(data.narrow);
  Object.keys(data.narrow_hidden).forEach(function (id) {
    loaded(id).then(function (dt) {
      if (!dt) return;
      function fit() { dt.columns(data.narrow_hidden[id]).visible(!narrow.matches); }
      fit();
      narrow.addEventListener('change', fit);
    });
  });
  showSystem(data.default_system);
  if (location.hash) fromHash(false);
  else if (data.first_trace !== null) openTrace(data.first_trace, false);
})();

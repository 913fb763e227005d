// Per-sample browser: every prompt and output is untrusted text, so it is only ever
// written with textContent (never innerHTML), from JSON parsed out of an inert
// <script type="application/json"> element. A large run's rows come gzipped and
// base64-encoded instead (#llmassay-samples-gzip) and are unpacked with the browser's
// own DecompressionStream once the rest of the page has rendered.
(function () {
  "use strict";

  function unpack(packed) {
    const text = atob(packed.textContent.trim());
    const bytes = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i += 1) bytes[i] = text.charCodeAt(i);
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    return new Response(stream).json();
  }

  function start(rows) {
    const PAGE = 50;
    const $ = (id) => document.getElementById(id);
    const body = $("sample-rows");
    let matches = rows;
    let page = 0;

    // The search text of a row is made when first searched: 200k rows need not pay for it at load.
    function hay(r) {
      if (r.hay === undefined) r.hay = [r.id, r.v || "", r.prompt, r.out, r.g || "", r.t, r.p].join("\n").toLowerCase();
      return r.hay;
    }

    function unique(values) {
      return Array.from(new Set(values.filter((v) => v !== null && v !== undefined))).sort();
    }

    function fill(select, values) {
      values.forEach((v) => {
        const option = document.createElement("option");
        option.value = v;
        option.textContent = v;
        select.appendChild(option);
      });
      if (values.length < 2) select.parentElement.hidden = true;
    }

    fill($("f-task"), unique(rows.map((r) => r.t)));
    fill($("f-probe"), unique(rows.map((r) => r.p)));
    fill($("f-variant"), unique(rows.map((r) => r.v)));
    if (!rows.some((r) => r.b !== null)) $("f-brittle").parentElement.hidden = true;
    if (!rows.some((r) => r.j !== null)) $("f-invalid").parentElement.hidden = true;

    function keep(r, f) {
      if (f.query && !hay(r).includes(f.query)) return false;
      if (f.task && r.t !== f.task) return false;
      if (f.probe && r.p !== f.probe) return false;
      if (f.variant && r.v !== f.variant) return false;
      if (f.result === "correct" && r.c !== true) return false;
      if (f.result === "incorrect" && r.c !== false) return false;
      if (f.brittle && r.b !== true) return false;
      if (f.invalid && r.j !== false) return false;
      return true;
    }

    function apply() {
      const f = {
        query: $("q").value.trim().toLowerCase(),
        task: $("f-task").value,
        probe: $("f-probe").value,
        variant: $("f-variant").value,
        result: $("f-result").value,
        brittle: $("f-brittle").checked,
        invalid: $("f-invalid").checked,
      };
      matches = rows.filter((r) => keep(r, f));
      page = 0;
      render();
    }

    function text(tag, value, cls) {
      const node = document.createElement(tag);
      node.textContent = value;
      if (cls) node.className = cls;
      return node;
    }

    function verdict(value, yes, no) {
      return value === true ? yes : value === false ? no : "";
    }

    function renderRow(r) {
      const tr = document.createElement("tr");
      tr.className = "sample";
      tr.appendChild(text("td", r.t + " · " + r.p));
      tr.appendChild(text("td", r.id, "mono"));
      tr.appendChild(text("td", r.v || "—"));
      tr.appendChild(text("td", verdict(r.c, "✓ correct", "✗ incorrect"), verdict(r.c, "ok", "bad")));
      const flags = [r.b ? "brittle" : "", r.j === false ? "invalid JSON" : "", r.j === true ? "valid JSON" : ""];
      tr.appendChild(text("td", flags.filter(Boolean).join(", ")));
      const cell = document.createElement("td");
      cell.appendChild(text("pre", r.out, "output"));
      if (r.g) cell.appendChild(text("div", "gold: " + r.g, "gold"));
      const more = document.createElement("details");
      more.appendChild(text("summary", "prompt (" + r.prompt.length + " chars) and scores"));
      more.appendChild(text("pre", r.prompt, "prompt"));
      if (r.s) more.appendChild(text("pre", r.s, "scores"));
      cell.appendChild(more);
      tr.appendChild(cell);
      return tr;
    }

    function render() {
      const pages = Math.max(1, Math.ceil(matches.length / PAGE));
      page = Math.min(Math.max(page, 0), pages - 1);
      body.replaceChildren(...matches.slice(page * PAGE, (page + 1) * PAGE).map(renderRow));
      $("count").textContent = matches.length + " of " + rows.length + " rows";
      $("page").textContent = "page " + (page + 1) + " of " + pages;
      $("prev").disabled = page === 0;
      $("next").disabled = page >= pages - 1;
    }

    ["q", "f-task", "f-probe", "f-variant", "f-result", "f-brittle", "f-invalid"].forEach((id) => {
      $(id).addEventListener(id === "q" ? "input" : "change", apply);
    });
    $("prev").addEventListener("click", () => { page -= 1; render(); });
    $("next").addEventListener("click", () => { page += 1; render(); });
    render();
  }

  const plain = document.getElementById("llmassay-samples");
  const packed = document.getElementById("llmassay-samples-gzip");
  if (plain) {
    start(JSON.parse(plain.textContent));
  } else if (packed) {
    document.getElementById("count").textContent = "unpacking " + packed.dataset.rows + " rows…";
    unpack(packed).then(start);
  }
})();

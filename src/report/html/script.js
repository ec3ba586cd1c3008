// netlens report: filter, page and zoom the connection cards. Without this script every
// card is shown. It only reads data-* attributes and toggles `hidden`: it never turns page
// text into markup.
(function () {
  "use strict";
  var list = document.getElementById("conn-list");
  var controls = document.getElementById("conn-controls");
  if (!list || !controls) return;
  var cards = Array.prototype.slice.call(list.querySelectorAll("article.conn"));
  var $ = function (id) { return document.getElementById(id); };
  var text = $("f-text"), st = $("f-state"), hs = $("f-hs"), td = $("f-td");
  var size = $("f-size"), zoom = $("f-zoom"), prev = $("p-prev"), next = $("p-next"), info = $("p-info");
  var page = 0, matched = cards;
  function perPage() { return parseInt(size.value, 10) || 50; }
  function ok(c) {
    var q = text.value.trim().toLowerCase();
    if (st.value && c.dataset.state !== st.value) return false;
    if (hs.value && c.dataset.hs !== hs.value) return false;
    if (td.value && c.dataset.td !== td.value) return false;
    return !q || (c.dataset.q || "").toLowerCase().indexOf(q) >= 0;
  }
  function show() {
    var n = perPage();
    var pages = Math.max(1, Math.ceil(matched.length / n));
    page = Math.min(Math.max(page, 0), pages - 1);
    var lo = page * n, hi = Math.min(lo + n, matched.length);
    var visible = new Set(matched.slice(lo, hi));
    for (var i = 0; i < cards.length; i++) {
      var h = !visible.has(cards[i]);
      if (cards[i].hidden !== h) cards[i].hidden = h;
    }
    info.textContent = matched.length === 0 ? "no connection matches" :
      (lo + 1) + "–" + hi + " of " + matched.length +
      (matched.length < cards.length ? " matching (" + cards.length + " in all)" : "") +
      " · page " + (page + 1) + "/" + pages;
    prev.disabled = page === 0;
    next.disabled = page >= pages - 1;
  }
  function filter() { matched = cards.filter(ok); page = 0; show(); }
  // An address like #c123 shows that card, clearing the filters if they hide it.
  function reveal() {
    var el = location.hash.length > 1 ? document.getElementById(location.hash.slice(1)) : null;
    if (!el || el.tagName !== "ARTICLE" || !list.contains(el)) return;
    var i = matched.indexOf(el);
    if (i < 0) {
      text.value = ""; st.value = ""; hs.value = ""; td.value = "";
      matched = cards; i = cards.indexOf(el);
    }
    page = Math.floor(i / perPage());
    show();
    el.scrollIntoView();
  }
  text.addEventListener("input", filter);
  [st, hs, td, size].forEach(function (e) { e.addEventListener("change", filter); });
  prev.addEventListener("click", function () { page -= 1; show(); list.scrollIntoView(); });
  next.addEventListener("click", function () { page += 1; show(); list.scrollIntoView(); });
  zoom.addEventListener("input", function () {
    document.documentElement.style.setProperty("--zoom", String(zoom.value / 100));
  });
  window.addEventListener("hashchange", reveal);
  controls.hidden = false;
  filter();
  reveal();
})();

// netlens report: filter, page and zoom the lists of cards (connections, streams). Without
// this script every card is shown. It only reads data-* attributes and toggles `hidden`:
// it never turns page text into markup.
(function () {
  "use strict";
  function setup(controls) {
    var list = document.getElementById(controls.dataset.list);
    if (!list) return null;
    var cards = Array.prototype.filter.call(list.children, function (c) { return c.tagName === "ARTICLE"; });
    var text = controls.querySelector("input[type=search]");
    var keys = Array.prototype.slice.call(controls.querySelectorAll("select[data-key]"));
    var size = controls.querySelector("select.size");
    var prev = controls.querySelector("button.prev"), next = controls.querySelector("button.next");
    var info = controls.querySelector(".info");
    var page = 0, matched = cards;
    function perPage() { return parseInt(size.value, 10) || 50; }
    function ok(c) {
      for (var i = 0; i < keys.length; i++) {
        if (keys[i].value && c.dataset[keys[i].dataset.key] !== keys[i].value) return false;
      }
      var q = text.value.trim().toLowerCase();
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
      info.textContent = matched.length === 0 ? "nothing matches" :
        (lo + 1) + "–" + hi + " of " + matched.length +
        (matched.length < cards.length ? " matching (" + cards.length + " in all)" : "") +
        " · page " + (page + 1) + "/" + pages;
      prev.disabled = page === 0;
      next.disabled = page >= pages - 1;
    }
    function filter() { matched = cards.filter(ok); page = 0; show(); }
    // Shows card `el` (an address like #c123), clearing the filters if they hide it.
    function reveal(el) {
      var i = matched.indexOf(el);
      if (i < 0) {
        text.value = "";
        keys.forEach(function (k) { k.value = ""; });
        matched = cards; i = cards.indexOf(el);
      }
      if (i < 0) return;
      page = Math.floor(i / perPage());
      show();
      el.scrollIntoView();
    }
    text.addEventListener("input", filter);
    keys.concat([size]).forEach(function (e) { e.addEventListener("change", filter); });
    prev.addEventListener("click", function () { page -= 1; show(); list.scrollIntoView(); });
    next.addEventListener("click", function () { page += 1; show(); list.scrollIntoView(); });
    var zoom = controls.querySelector("input.zoom");
    if (zoom) {
      zoom.addEventListener("input", function () {
        list.style.setProperty("--zoom", String(zoom.value / 100));
      });
    }
    controls.hidden = false;
    filter();
    return { list: list, reveal: reveal };
  }
  var lists = Array.prototype.map.call(document.querySelectorAll(".controls[data-list]"), setup)
    .filter(function (l) { return l; });
  function onHash() {
    var el = location.hash.length > 1 ? document.getElementById(location.hash.slice(1)) : null;
    if (!el || el.tagName !== "ARTICLE") return;
    lists.forEach(function (l) { if (l.list.contains(el)) l.reveal(el); });
  }
  window.addEventListener("hashchange", onHash);
  onHash();
})();

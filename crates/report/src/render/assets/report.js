// Behaviour of the art HTML report (inlined; no external resources, no network).
// * Images are defined once, in the JSON map #art-images (hash -> data: URI), and
//   each img element with a data-sha attribute gets its source from it, so an image used by several rounds is stored once.
// * Images start blurred; clicking one (or Enter/Space, it is a button) toggles .revealed.
// * Following a link to a round opens the lane's <details>.
(function () {
  "use strict";
  var map = {};
  var data = document.getElementById("art-images");
  if (data) {
    map = JSON.parse(data.textContent);
  }
  document.querySelectorAll("img[data-sha]").forEach(function (img) {
    var uri = map[img.getAttribute("data-sha")];
    if (uri) {
      img.src = uri;
    }
  });

  function setRevealed(button, on) {
    button.classList.toggle("revealed", on);
    button.setAttribute("aria-pressed", on ? "true" : "false");
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest("button.thumb");
    if (button) {
      setRevealed(button, !button.classList.contains("revealed"));
    }
  });
  function onAll(id, fn) {
    var el = document.getElementById(id);
    if (el) {
      el.addEventListener("click", fn);
    }
  }
  onAll("reveal-all", function () {
    document.querySelectorAll("button.thumb").forEach(function (b) { setRevealed(b, true); });
  });
  onAll("blur-all", function () {
    document.querySelectorAll("button.thumb").forEach(function (b) { setRevealed(b, false); });
  });
  onAll("expand-all", function () {
    document.querySelectorAll("details.lane").forEach(function (d) { d.open = true; });
  });
  onAll("collapse-all", function () {
    document.querySelectorAll("details.lane").forEach(function (d) { d.open = false; });
  });

  function openTarget() {
    var id = location.hash.slice(1);
    try {
      id = decodeURIComponent(id);
    } catch (e) {
      return;
    }
    var target = id && document.getElementById(id);
    if (!target) {
      return;
    }
    for (var el = target; el; el = el.parentElement) {
      if (el.tagName === "DETAILS") {
        el.open = true;
      }
    }
    target.scrollIntoView();
  }
  window.addEventListener("hashchange", openTarget);
  openTarget();
})();

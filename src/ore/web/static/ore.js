// ore's only script of its own: draws the link chart with the locally served cytoscape.js.
// No inline script anywhere (the Content-Security-Policy forbids it); the chart's data comes
// from the page's own server (graph.json), which applies the same scoping as the page.
(function () {
  "use strict";
  var COLOURS = { identified: "#2f4b7c", unidentified: "#a8322d", card: "#d9822b", email: "#1b6f5a", ip: "#7a5195", account: "#5d6675" };

  function draw(el) {
    if (typeof window.cytoscape !== "function" || el.dataset.drawn) { return; }
    el.dataset.drawn = "1";
    fetch(el.dataset.graphUrl, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { if (!r.ok) { throw new Error("graph " + r.status); } return r.json(); })
      .then(function (g) {
        var cy = window.cytoscape({
          container: el,
          elements: g.nodes.concat(g.edges),
          style: [
            { selector: "node", style: { "label": "data(label)", "font-size": 10, "text-valign": "bottom", "text-margin-y": 3,
                                          "width": 18, "height": 18, "background-color": function (n) { return COLOURS[n.data("kind")] || "#888"; } } },
            { selector: "node[kind = 'identified'], node[kind = 'unidentified']", style: { "width": 26, "height": 26, "shape": "round-rectangle" } },
            { selector: "edge", style: { "width": 1.5, "line-color": "#b9c0cc", "curve-style": "bezier" } }
          ],
          layout: { name: "cose", animate: false, padding: 20 }
        });
        cy.on("tap", "node", function (evt) {
          var id = evt.target.id();
          if (id.indexOf("person:") === 0 && evt.target.data("label")) {
            var ref = evt.target.data("label").split(" ")[0];
            window.location.href = (evt.target.data("kind") === "unidentified" ? "/subjects/" : "/persons/") + encodeURIComponent(ref);
          }
        });
        el.dataset.nodes = String(g.nodes.length);
        if (g.note) { var p = document.createElement("p"); p.className = "notice"; p.textContent = g.note; el.after(p); }
      })
      .catch(function (e) { el.textContent = "The link chart could not be drawn: " + e.message; });
  }

  function init() { var el = document.getElementById("graph"); if (el) { draw(el); } }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", init); } else { init(); }
  window.addEventListener("load", init);
})();

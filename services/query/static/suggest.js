// Title suggestions while typing, from /api/suggest, offered through the box's <datalist>.
// Without JavaScript the box is a plain search box.
(function () {
  "use strict";
  var box = document.getElementById("q");
  var list = document.getElementById("suggestions");
  if (!box || !list || !window.fetch) { return; }
  var timer = null;
  var asked = "";
  box.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(function () {
      var prefix = box.value.trim();
      if (prefix.length < 2 || prefix === asked) { return; }
      asked = prefix;
      fetch("/api/suggest?size=8&q=" + encodeURIComponent(prefix))
        .then(function (response) { return response.ok ? response.json() : { suggestions: [] }; })
        .then(function (body) {
          if (asked !== prefix) { return; }  // a newer prefix was asked meanwhile
          list.replaceChildren.apply(list, body.suggestions.map(function (s) {
            var option = document.createElement("option");
            option.value = s.title;
            return option;
          }));
        })
        .catch(function () { /* suggestions are a convenience: the search still works */ });
    }, 150);
  });
})();

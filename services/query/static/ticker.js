// Live ticker: replaces a currency's line when the quotes stream reports a new rate.
// Without JavaScript (or EventSource) the ticker stays as the server rendered it.
(function () {
  "use strict";
  var ticker = document.getElementById("ticker");
  if (!ticker || !window.EventSource) { return; }
  var source = new EventSource("/api/quotes/stream");
  ticker.dataset.live = "connecting";
  source.addEventListener("open", function () { ticker.dataset.live = "on"; });
  source.addEventListener("quote", function (message) {
    var update = JSON.parse(message.data);
    var item = ticker.querySelector('li[data-base="' + update.base + '"]');
    if (!item) {
      item = document.createElement("li");
      item.dataset.base = update.base;
      ticker.appendChild(item);
    }
    item.textContent = update.ticker;
    item.title = "as of " + update.as_of;
    item.classList.remove("stale");  // a quote just published is current
    item.classList.add("updated");
  });
})();

// Live ticker: replaces a currency's line when the quotes stream reports a new rate.
// Without JavaScript (or EventSource) the ticker stays as the server rendered it.
(function () {
  "use strict";
  var ticker = document.getElementById("ticker");
  if (!ticker || !window.EventSource) { return; }
  // A stream that ends (the server bounds how long one lasts) is reopened by EventSource
  // itself; a refusal (429 or 503: too many open) closes it for good, so try again later.
  var REFUSED_RETRY_MS = 30000;
  // The page's language: its decimal sign, its "as of {date}" and the locale of its dates,
  // as the server wrote them.
  var decimal = ticker.dataset.decimal || ".";
  var asOf = ticker.dataset.asOf || "{date}";
  var locale = ticker.dataset.locale || document.documentElement.lang;

  function longDate(iso) {
    try {
      return new Intl.DateTimeFormat(locale, {
        day: "numeric", month: "long", year: "numeric", timeZone: "UTC"
      }).format(new Date(iso + "T00:00:00Z"));
    } catch (error) {
      return iso;  // a language this browser cannot format dates in
    }
  }

  function show(message) {
    var update = JSON.parse(message.data);
    var item = ticker.querySelector('li[data-base="' + update.base + '"]');
    if (!item) {
      item = document.createElement("li");
      item.dataset.base = update.base;
      ticker.appendChild(item);
    }
    // An older day's quote (a backfill, a catch-up) is history, not the current rate.
    // ISO dates compare as strings.
    if (item.dataset.day && update.as_of < item.dataset.day) { return; }
    item.dataset.day = update.as_of;
    item.textContent = update.ticker.split(".").join(decimal);
    item.title = asOf.replace("{date}", longDate(update.as_of));
    item.classList.remove("stale");  // a quote just published is current
    item.classList.add("updated");
  }

  function connect() {
    var source = new EventSource("/api/quotes/stream");
    ticker.dataset.live = "connecting";
    source.addEventListener("open", function () { ticker.dataset.live = "on"; });
    source.addEventListener("quote", show);
    source.addEventListener("error", function () {
      if (source.readyState === EventSource.CLOSED) {
        ticker.dataset.live = "off";
        window.setTimeout(connect, REFUSED_RETRY_MS);
      }
    });
  }

  connect();
})();

// Progressive enhancement only: every form works without this file.
// Setting Credit: say before submitting whether the amount fits the pool or the
// withdrawable maximum. The server checks again; this only saves a round trip.
(function () {
  "use strict";
  var form = document.getElementById("credit-form");
  if (!form) { return; }
  var input = document.getElementById("amount");
  var out = document.getElementById("amount-check");
  function cents(text) {
    var m = /^([+-]?)(\d{1,10})(?:\.(\d{1,2}))?$/.exec(text.trim());
    if (!m) { return null; }
    var value = parseInt(m[2], 10) * 100 + parseInt(((m[3] || "") + "00").slice(0, 2), 10);
    return m[1] === "-" ? -value : value;
  }
  var pool = cents(form.dataset.poolRemaining);
  var most = cents(form.dataset.maxWithdrawable);
  function check() {
    var value = cents(input.value);
    var message = "";
    if (input.value.trim() === "") { message = ""; }
    else if (value === null) { message = "Enter an amount such as 100.00 (two decimals at most)."; }
    else if (value === 0) { message = "The amount must not be zero."; }
    else if (value > pool) { message = "More than the pool's remaining credit."; }
    else if (value < 0 && -value > most) { message = "More than the maximum withdrawable."; }
    out.textContent = message;
    out.classList.toggle("bad", message !== "");
    input.setCustomValidity(message);
  }
  input.addEventListener("input", check);
  check();
})();

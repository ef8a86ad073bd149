// The API docs page (/api/v1/docs): Swagger UI (static/vendor/swagger-ui) set up from the settings the page
// carries as JSON, here rather than in an inline script, so the page keeps the strict Content-Security-Policy.
(function () {
  "use strict";
  const settings = JSON.parse(document.getElementById("swagger-settings").textContent);
  window.ui = SwaggerUIBundle(Object.assign(settings, {
    dom_id: "#swagger-ui",
    presets: [SwaggerUIBundle.presets.apis],
  }));
})();

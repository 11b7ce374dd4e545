// The API's documentation page: Swagger UI (served from the fastapi-offline package, never a CDN) over the
// server's own OpenAPI document.
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({ url: "/api/v1/openapi.json", dom_id: "#swagger-ui", deepLinking: true });
});

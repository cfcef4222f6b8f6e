import express, { Router } from 'express';
import { getAbsoluteFSPath } from 'swagger-ui-dist';

// /docs renders /openapi.json with Swagger UI, every asset served from
// node_modules (swagger-ui-dist): the page works offline and sends nothing to a CDN.

export const DOCS_PATH = '/docs';
const ASSETS = `${DOCS_PATH}/assets`;

const page = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Hookline API</title>
  <link rel="icon" type="image/png" href="${ASSETS}/favicon-32x32.png">
  <link rel="stylesheet" href="${ASSETS}/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="${ASSETS}/swagger-ui-bundle.js"></script>
  <script src="${ASSETS}/swagger-ui-standalone-preset.js"></script>
  <script src="${DOCS_PATH}/init.js"></script>
</body>
</html>
`;

// A file rather than an inline script, so the page keeps working under a strict CSP.
// validatorUrl null: Swagger UI would otherwise send the document to validator.swagger.io.
const init = `window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: '/openapi.json',
    dom_id: '#swagger-ui',
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    layout: 'StandaloneLayout'
  });
};
`;

export function createDocsRouter(): Router {
  const router = Router();
  router.get(DOCS_PATH, (_req, res) => {
    res.type('html').send(page);
  });
  router.get(`${DOCS_PATH}/init.js`, (_req, res) => {
    res.type('js').send(init);
  });
  // index: false — the package's own index.html points at the petstore demo.
  router.use(ASSETS, express.static(getAbsoluteFSPath(), { index: false, maxAge: '1h', fallthrough: true }));
  return router;
}

import express, { Router, type RequestHandler } from 'express';
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

/**
 * Only the files the page above loads (and their source maps). The package
 * also holds Swagger's demo pages (index.html, swagger-initializer.js and the
 * OAuth redirect page), which make a browser fetch the petstore spec from a
 * third-party host: those are 404, like any other path.
 */
export const DOCS_ASSETS: ReadonlySet<string> = new Set(['swagger-ui.css', 'swagger-ui-bundle.js', 'swagger-ui-standalone-preset.js', 'favicon-32x32.png', 'favicon-16x16.png']);
const onlyPageAssets: RequestHandler = (req, _res, next) => {
  const file = req.path.replace(/^\//, '').replace(/\.map$/, '');
  // 'router' leaves the assets router: the request falls through to the app's 404 envelope.
  next(DOCS_ASSETS.has(file) ? undefined : 'router');
};

export function createDocsRouter(): Router {
  const router = Router();
  router.get(DOCS_PATH, (_req, res) => {
    res.type('html').send(page);
  });
  router.get(`${DOCS_PATH}/init.js`, (_req, res) => {
    res.type('js').send(init);
  });
  const assets = Router();
  assets.use(onlyPageAssets, express.static(getAbsoluteFSPath(), { index: false, maxAge: '1h', fallthrough: true }));
  router.use(ASSETS, assets);
  return router;
}

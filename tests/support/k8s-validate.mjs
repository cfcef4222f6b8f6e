// Validates Kubernetes objects against their schemas (kubernetes-models, and
// @kubernetes-models/keda for KEDA's ScaledObject). Those packages are ESM-only,
// so jest (CommonJS) runs this as a child process: a JSON array of objects on
// stdin, one result per object on stdout ({ kind, name, error }).
import { readFileSync } from 'node:fs';

const modulePath = ({ apiVersion, kind }) => {
  if (apiVersion.startsWith('keda.sh/')) return `@kubernetes-models/keda/${apiVersion}/${kind}`;
  return `kubernetes-models/${apiVersion}/${kind}`;
};

const objects = JSON.parse(readFileSync(0, 'utf8'));
const results = [];
for (const object of objects) {
  const name = object.metadata?.name;
  try {
    const Model = (await import(modulePath(object)))[object.kind];
    if (!Model) throw new Error(`no schema for ${object.apiVersion} ${object.kind}`);
    new Model(object).validate();
    results.push({ kind: object.kind, name, error: null });
  } catch (err) {
    results.push({ kind: object.kind, name, error: String(err?.message ?? err) });
  }
}
process.stdout.write(JSON.stringify(results));

// Keeps tools/ep-api/openapi.json true: calls every documented operation of a running
// ep-api (seeded by the C++ fixture), checks each status is documented for it and
// validates each JSON body against the documented schema with Ajv (JSON Schema 2020-12,
// which OpenAPI 3.1 uses). Fails when a documented operation was never exercised with
// a success, or when a call hits something the document does not describe.
//   EP_API_BASE=http://127.0.0.1:PORT EP_FIXTURE='{"acme_key":…}' EP_NODE_MODULES=tests/node
import { createRequire } from 'node:module';

const require = createRequire(process.env.EP_NODE_MODULES.replace(/\/?$/, '/'));
const Ajv2020 = require('ajv/dist/2020').default;
const addFormats = require('ajv-formats').default;

const base = process.env.EP_API_BASE;
const f = JSON.parse(process.env.EP_FIXTURE);
const problems = [];

const doc = await (await fetch(base + '/v1/openapi.json')).json();
if (doc.openapi !== '3.1.0') problems.push(`openapi is ${doc.openapi}, want 3.1.0`);
const ajv = new Ajv2020({ strict: false, allErrors: true, validateSchema: false });
addFormats(ajv);
ajv.addSchema({ ...doc, $id: 'ep-openapi' });
const validators = new Map();
function validator(ref) {
  if (!validators.has(ref)) validators.set(ref, ajv.compile({ $ref: 'ep-openapi' + ref }));
  return validators.get(ref);
}
function schemaRef(schema) {
  if (!schema || !schema.$ref) throw new Error('inline schema without $ref: ' + JSON.stringify(schema));
  return schema.$ref;
}

// Every call: [method, template, concrete path, key, body, expected status].
const A = f.acme_key, G = f.globex_key;
const created = {};
const cases = [
  ['get', '/v1/health', '/v1/health', '', null, 200],
  ['get', '/v1/openapi.json', '/v1/openapi.json', '', null, 200],
  ['get', '/v1/me', '/v1/me', A, null, 200],
  ['get', '/v1/me', '/v1/me', 'ep_AAAAAAAA_' + 'B'.repeat(32), null, 401],
  ['get', '/v1/anomalies', '/v1/anomalies', A, null, 200],
  ['get', '/v1/anomalies', `/v1/anomalies?metric_id=${f.acme_voltage}&label=spike&min_score=0.5&from=30d&limit=1`, A, null, 200],
  ['get', '/v1/anomalies', '/v1/anomalies?min_score=7', A, null, 400],
  ['get', '/v1/devices', '/v1/devices?limit=1', A, null, 200],
  ['post', '/v1/devices', '/v1/devices', A, { external_id: 'oa-dev' }, 201, (b) => { created.device = b.device_id; }],
  ['post', '/v1/devices', '/v1/devices', A, { external_id: 'oa-dev' }, 409],
  ['get', '/v1/devices/{id}', () => `/v1/devices/${created.device}`, A, null, 200],
  ['get', '/v1/devices/{id}', `/v1/devices/${f.globex_dev}`, A, null, 404],
  ['get', '/v1/metrics', '/v1/metrics', A, null, 200],
  ['post', '/v1/metrics', '/v1/metrics', A, () => ({ device_id: created.device, name: 'oa', unit: 'V', expected_interval_sec: 10 }), 201],
  ['get', '/v1/metrics/{id}', `/v1/metrics/${f.acme_voltage}`, A, null, 200],
  ['get', '/v1/metrics/{id}', `/v1/metrics/${f.globex_temp}`, A, null, 404],
  ['get', '/v1/alert-rules', '/v1/alert-rules', A, null, 200],
  ['post', '/v1/alert-rules', '/v1/alert-rules', A, { name: 'oa-rule', labels: ['spike'], min_score: 0.7, webhook_id: f.acme_hook }, 201, (b) => { created.rule = b.rule_id; }],
  ['get', '/v1/alert-rules/{id}', () => `/v1/alert-rules/${created.rule}`, A, null, 200],
  ['patch', '/v1/alert-rules/{id}', () => `/v1/alert-rules/${created.rule}`, A, { enabled: false, cooldown_sec: 60 }, 200],
  ['patch', '/v1/alert-rules/{id}', `/v1/alert-rules/${f.globex_rule}`, A, { enabled: false }, 404],
  ['delete', '/v1/alert-rules/{id}', () => `/v1/alert-rules/${created.rule}`, A, null, 204],
  ['get', '/v1/webhooks', '/v1/webhooks', A, null, 200],
  ['post', '/v1/webhooks', '/v1/webhooks', A, { name: 'oa-hook', url: 'https://example.com/h' }, 201, (b) => { created.hook = b.webhook_id; }],
  ['get', '/v1/webhooks/{id}', () => `/v1/webhooks/${created.hook}`, A, null, 200],
  ['patch', '/v1/webhooks/{id}', () => `/v1/webhooks/${created.hook}`, A, { timeout_ms: 1000 }, 200],
  ['post', '/v1/webhooks/{id}/rotate-secret', () => `/v1/webhooks/${created.hook}/rotate-secret`, A, null, 200],
  ['post', '/v1/webhooks/{id}/rotate-secret', `/v1/webhooks/${f.globex_hook}/rotate-secret`, A, null, 404],
  ['delete', '/v1/webhooks/{id}', () => `/v1/webhooks/${created.hook}`, A, null, 204],
  ['get', '/v1/batches', '/v1/batches', A, null, 200],
  ['get', '/v1/batches', '/v1/batches?status=failed&from=7d', A, null, 200],
  ['get', '/v1/series', `/v1/series?metric_id=${f.acme_voltage}&max_points=200`, A, null, 200],
  ['get', '/v1/series', `/v1/series?metric_id=${f.globex_temp}`, A, null, 404],
  ['get', '/v1/series', '/v1/series', A, null, 400],
  ['get', '/v1/alerts', '/v1/alerts', A, null, 200],
  ['get', '/v1/alerts', '/v1/alerts', G, null, 200],
  ['get', '/v1/models', '/v1/models', A, null, 200],
  ['get', '/v1/usage', '/v1/usage', A, null, 200],
];

const exercised = new Set();
for (const [method, template, p, key, b, want, after] of cases) {
  const path = typeof p === 'function' ? p() : p;
  const body = typeof b === 'function' ? b() : b;
  const label = `${method.toUpperCase()} ${path}`;
  const op = doc.paths[template]?.[method];
  if (!op) { problems.push(`${method.toUpperCase()} ${template}: not in the document`); continue; }
  if (body && op.requestBody) {
    const v = validator(schemaRef(op.requestBody.content['application/json'].schema));
    if (!v(body)) problems.push(`${label}: test request body does not match the document: ${ajv.errorsText(v.errors)}`);
  }
  const headers = {};
  if (key) headers['X-API-Key'] = key;
  if (body) headers['Content-Type'] = 'application/json';
  const res = await fetch(base + path, { method: method.toUpperCase(), headers, body: body ? JSON.stringify(body) : undefined });
  const text = await res.text();
  if (res.status !== want) { problems.push(`${label}: status ${res.status}, want ${want}: ${text}`); continue; }
  const doc_resp = op.responses[String(res.status)];
  if (!doc_resp) { problems.push(`${label}: status ${res.status} is not documented`); continue; }
  if (res.status >= 200 && res.status < 300) exercised.add(`${method} ${template}`);
  const content = doc_resp.content?.['application/json'];
  if (!content) {
    if (text.length) problems.push(`${label}: documented without a body but returned ${text.length} bytes`);
    continue;
  }
  if (!(res.headers.get('content-type') || '').startsWith('application/json')) problems.push(`${label}: content-type ${res.headers.get('content-type')}`);
  let json;
  try { json = JSON.parse(text); } catch (e) { problems.push(`${label}: body is not JSON`); continue; }
  if (content.schema.$ref) {
    const v = validator(content.schema.$ref);
    if (!v(json)) problems.push(`${label}: response does not match ${content.schema.$ref}: ${ajv.errorsText(v.errors)}`);
  }
  if (after) after(json);
}
for (const [template, ops] of Object.entries(doc.paths)) {
  for (const method of Object.keys(ops)) {
    if (!exercised.has(`${method} ${template}`)) problems.push(`${method.toUpperCase()} ${template}: documented but never exercised with a success`);
  }
}
if (problems.length) {
  console.error(problems.join('\n'));
  process.exit(1);
}
console.log(`openapi_check: ${cases.length} calls, ${exercised.size} operations, all responses valid`);
